// Generates the viewer's API types (src/lib/api-types.ts) from the collector's OpenAPI document
// (src/lib/openapi.json, the committed copy that collector/tests/openapi.rs keeps equal to what
// the server serves). `npm run api-types` writes the file; src/lib/api-types.test.ts fails while
// the committed file is not what the current document generates.
//
// It knows the part of JSON Schema the collector's document uses: objects with properties and
// `required`, arrays, `$ref`s to components, string enums, nullable types (`type: [T, "null"]` and
// `oneOf: [{type: "null"}, …]`), and the scalar types.

import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const REF = "#/components/schemas/";

/** A JS doc comment at `indent`, or nothing. */
function doc(description, indent) {
  if (!description) return "";
  const lines = description.trim().split("\n");
  if (lines.length === 1) return `${indent}/** ${lines[0]} */\n`;
  return `${indent}/**\n${lines.map((l) => `${indent} * ${l}`.trimEnd()).join("\n")}\n${indent} */\n`;
}

const SCALARS = { string: "string", integer: "number", number: "number", boolean: "boolean", null: "null" };

/** The TypeScript type of a schema. */
function typeOf(schema, indent) {
  if (schema.$ref) {
    if (!schema.$ref.startsWith(REF)) throw new Error(`unsupported $ref ${schema.$ref}`);
    return schema.$ref.slice(REF.length);
  }
  if (schema.oneOf) return schema.oneOf.map((s) => typeOf(s, indent)).join(" | ");
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  return types
    .map((t) => {
      if (t === "array") {
        const item = typeOf(schema.items, indent);
        return /[ |]/.test(item) ? `(${item})[]` : `${item}[]`;
      }
      if (t === "object") return objectType(schema, indent);
      if (t in SCALARS) return SCALARS[t];
      throw new Error(`unsupported type ${JSON.stringify(t)}`);
    })
    .join(" | ");
}

/** An object type literal. */
function objectType(schema, indent) {
  const required = new Set(schema.required ?? []);
  const inner = `${indent}  `;
  const fields = Object.entries(schema.properties ?? {}).map(([name, property]) => {
    const description = property.description ?? property.oneOf?.find((s) => s.description)?.description;
    const key = /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : JSON.stringify(name);
    const optional = required.has(name) ? "" : "?";
    return `${doc(description, inner)}${inner}${key}${optional}: ${typeOf(property, inner)};\n`;
  });
  return `{\n${fields.join("")}${indent}}`;
}

/** The source of api-types.ts for an OpenAPI document. */
export function generate(document) {
  const schemas = document.components?.schemas ?? {};
  const out = [
    "// Generated from src/lib/openapi.json by `npm run api-types` (scripts/api-types.mjs): do not edit.\n",
    `// ${document.info?.title ?? "API"} ${document.info?.version ?? ""}`.trimEnd() + "\n",
  ];
  for (const name of Object.keys(schemas).sort()) {
    const schema = schemas[name];
    out.push("\n", doc(schema.description, ""));
    if (schema.type === "object") out.push(`export interface ${name} ${objectType(schema, "")}\n`);
    else out.push(`export type ${name} = ${typeOf(schema, "")};\n`);
  }
  return out.join("");
}

// Run as a script: write src/lib/api-types.ts from src/lib/openapi.json.
if (import.meta.url.startsWith("file:") && process.argv[1] === fileURLToPath(import.meta.url)) {
  const lib = fileURLToPath(new URL("../src/lib/", import.meta.url));
  writeFileSync(`${lib}api-types.ts`, generate(JSON.parse(readFileSync(`${lib}openapi.json`, "utf8"))));
  console.log(`wrote ${lib}api-types.ts`);
}
