/**
 * Seeded, stateless assignment of a record id to a split, shard and slice. Because the assignment is a
 * pure function of (seed, id), ingest can stream (each row is placed the moment it is read), and a
 * deletion finds the shard and slice of an id without reading any shard: only that shard is opened to
 * confirm the id is there.
 */
import { hashUnit, murmur3Joined } from '../util/rng.js';

export type Placement =
  | { split: 'test' }
  | { split: 'calibration' }
  | { split: 'train'; shard: number; slice: number };

export interface AssignConfig {
  seed: number;
  test: number;
  calibration: number;
  shards: number;
  slices: number;
}

export function placeRecord(id: string, cfg: AssignConfig): Placement {
  const u = hashUnit(cfg.seed, 'split', id);
  if (u < cfg.test) return { split: 'test' };
  if (u < cfg.test + cfg.calibration) return { split: 'calibration' };
  const shard = murmur3Joined('shard\u0000', id, cfg.seed) % cfg.shards;
  const slice = murmur3Joined('slice\u0000', id, cfg.seed ^ 0x5bd1e995) % cfg.slices;
  return { split: 'train', shard, slice };
}
