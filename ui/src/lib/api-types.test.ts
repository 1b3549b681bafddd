import { describe, expect, it } from "vitest";
import documentText from "./openapi.json?raw";
import committedTypes from "./api-types.ts?raw";
import { generate } from "../../scripts/api-types.mjs";

/** A document with one component schema. */
const withSchema = (name: string, schema: object) => ({ info: { title: "T", version: "1" }, components: { schemas: { [name]: schema } } });

describe("the API types", () => {
  it("are what the committed OpenAPI document generates (else: npm run api-types)", () => {
    expect(committedTypes).toBe(generate(JSON.parse(documentText)));
  });

  it("make a property outside `required` optional", () => {
    const out = generate(withSchema("A", { type: "object", required: ["x"], properties: { x: { type: "string" }, y: { type: "integer" } } }));
    expect(out).toContain("  x: string;\n");
    expect(out).toContain("  y?: number;\n");
  });

  it("write a nullable reference as a union with null", () => {
    const out = generate(withSchema("A", { type: "object", required: ["b"], properties: { b: { oneOf: [{ type: "null" }, { $ref: "#/components/schemas/B" }] } } }));
    expect(out).toContain("  b: null | B;\n");
  });

  it("write a string enum as a union of its literals", () => {
    expect(generate(withSchema("Kind", { type: "string", enum: ["service", "topic"] }))).toContain('export type Kind = "service" | "topic";');
  });

  it("write an array of a nullable type with parentheses", () => {
    expect(generate(withSchema("L", { type: "array", items: { type: ["string", "null"] } }))).toContain("export type L = (string | null)[];");
  });

  it("refuse a type they do not know", () => {
    expect(() => generate(withSchema("X", { type: "tuple" }))).toThrow(/unsupported type/);
  });
});
