// The addresses README examples run against: the README shows nsqd's and nsqlookupd's default
// ports; the example files use these names in their place (test/docs/readme-examples.spec.ts
// holds the two to each other).
export const NSQD = process.env.README_NSQD ?? 'missing README_NSQD';
export const LOOKUPD = process.env.README_LOOKUPD ?? 'missing README_LOOKUPD';
export const HTTP_PORT = 0;
