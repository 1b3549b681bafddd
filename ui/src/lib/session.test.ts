import { describe, expect, it } from "vitest";
import { authConfig } from "./session";

const answering = (status: number, body: unknown) =>
  (async () => new Response(JSON.stringify(body), { status })) as unknown as typeof fetch;

describe("authConfig", () => {
  it("reads the OpenID Connect mode and its login address", async () => {
    expect(await authConfig(answering(200, { mode: "oidc", login: "/auth/login" }))).toEqual({
      mode: "oidc",
      login: "/auth/login",
    });
  });

  it("reads a mode without a login address", async () => {
    expect(await authConfig(answering(200, { mode: "tokens", login: null }))).toEqual({ mode: "tokens", login: null });
  });

  it("is null when the collector does not say", async () => {
    expect(await authConfig(answering(404, { error: "not_found" }))).toBeNull();
    expect(await authConfig((async () => Promise.reject(new Error("down"))) as unknown as typeof fetch)).toBeNull();
  });
});
