/**
 * A CSV record's fields object, shared by the reader on the calling thread (csvReader.ts) and the one that
 * receives a worker thread's batches (csvThread.ts). Its own module: the main thread of an ingest loads it
 * without csv-parse.
 */

/**
 * Builds a record's fields object from its values in `names`' order, as csv-parse's `columns` option built
 * them: own enumerable properties. By assignment, which is faster, unless a column is named __proto__
 * (assigning that would go to the prototype setter, and a string there is dropped).
 */
export function fieldsBuilder(names: readonly string[]): (values: readonly unknown[], from?: number) => Record<string, unknown> {
  if (names.includes('__proto__'))
    return (values, from = 0) => {
      const fields: Record<string, unknown> = {};
      for (let c = 0; c < names.length; c++) Object.defineProperty(fields, names[c]!, { value: values[from + c], enumerable: true, writable: true, configurable: true });
      return fields;
    };
  return (values, from = 0) => {
    const fields: Record<string, unknown> = {};
    for (let c = 0; c < names.length; c++) fields[names[c]!] = values[from + c];
    return fields;
  };
}
