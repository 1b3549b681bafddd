// Types of scripts/api-types.mjs, for the viewer's test (src/lib/api-types.test.ts).

/** The source of api-types.ts for an OpenAPI document. */
export function generate(document: unknown): string;
