import { describe, expect, it } from "vitest";
import { Api } from "./api";
import { parseQuery, resolveQuery, suggestKeys } from "./query";

/** An API answering from a table of paths; anything else is a JSON 404. */
function fakeApi(answers: Record<string, unknown>) {
  const asked: string[] = [];
  const api = new Api(async (url) => {
    asked.push(url);
    if (url in answers) return new Response(JSON.stringify(answers[url]), { status: 200 });
    return new Response(JSON.stringify({ error: "not_found", detail: url }), { status: 404 });
  });
  return { api, asked };
}

describe("the search box", () => {
  it("reads keys, traces, prefixed ids and bare values", () => {
    expect(parseQuery(" order.id=o-1001 ")).toEqual({ kind: "key", name: "order.id", value: "o-1001" });
    expect(parseQuery("order.id: o-1001")).toEqual({ kind: "key", name: "order.id", value: "o-1001" });
    expect(parseQuery("q=a=b")).toEqual({ kind: "key", name: "q", value: "a=b" });
    expect(parseQuery("4bf92f3577b34da6a3ce929d0e0e4736")).toEqual({ kind: "trace", id: "4bf92f3577b34da6a3ce929d0e0e4736" });
    expect(parseQuery("event:kafka:orders/0/1")).toEqual({ kind: "event", id: "kafka:orders/0/1" });
    expect(parseQuery("Correlation: c-1")).toEqual({ kind: "correlation", id: "c-1" });
    expect(parseQuery("o-1001")).toEqual({ kind: "bare", value: "o-1001" });
    expect(parseQuery("01a22633-bd97-755a-9778-a88c013f67f6")).toEqual({ kind: "bare", value: "01a22633-bd97-755a-9778-a88c013f67f6" });
    expect(parseQuery("   ")).toEqual({ kind: "empty" });
  });

  it("goes straight to a key's flow or a trace without asking the collector", async () => {
    const { api, asked } = fakeApi({});
    expect(await resolveQuery(api, "order.id=o-1")).toEqual({ kind: "go", href: "/flows/key/order.id/o-1" });
    expect(await resolveQuery(api, "4bf92f3577b34da6a3ce929d0e0e4736")).toEqual({
      kind: "go",
      href: "/flows/trace/4bf92f3577b34da6a3ce929d0e0e4736",
    });
    expect(asked).toEqual([]);
  });

  it("opens a bare value that is an event id as that event", async () => {
    const { api } = fakeApi({ "/api/v1/events/e-1": { id: "e-1", keys: [] } });
    expect(await resolveQuery(api, "e-1")).toEqual({ kind: "go", href: "/events/e-1" });
  });

  it("opens a bare value held by one specific key as that key's flow", async () => {
    const { api, asked } = fakeApi({ "/api/v1/keys?value=o-7": { names: ["kafka.key", "order.id"] } });
    expect(await resolveQuery(api, "o-7")).toEqual({ kind: "go", href: "/flows/key/order.id/o-7" });
    expect(asked).toEqual(["/api/v1/events/o-7", "/api/v1/keys?value=o-7"]);
  });

  it("lets the user choose when several keys hold the value, and says when none does", async () => {
    const { api } = fakeApi({
      "/api/v1/keys?value=x": { names: ["sku", "bin"] },
      "/api/v1/keys?value=nobody": { names: [] },
      "/api/v1/keys?value=k": { names: ["kafka.key"] },
    });
    // Only a generic name holds it: that one, then.
    expect(await resolveQuery(api, "k")).toEqual({ kind: "go", href: "/flows/key/kafka.key/k" });
    expect(await resolveQuery(api, "x")).toEqual({
      kind: "choose",
      options: [
        { label: "bin = x", href: "/flows/key/bin/x" },
        { label: "sku = x", href: "/flows/key/sku/x" },
      ],
    });
    const nothing = await resolveQuery(api, "nobody");
    expect(nothing.kind).toBe("nothing");
  });

  it("reports a collector that fails instead of pretending nothing was found", async () => {
    const api = new Api(async () => new Response(JSON.stringify({ error: "store", detail: "down" }), { status: 503 }));
    await expect(resolveQuery(api, "o-1")).rejects.toMatchObject({ status: 503, kind: "store", detail: "down" });
  });

  it("suggests key names, prefix matches first, until a value is typed", () => {
    const names = ["cart.id", "kafka.key", "order.id", "payment.id", "subject"];
    expect(suggestKeys(names, "")).toEqual(names.map((n) => `${n}=`));
    expect(suggestKeys(names, "pa")).toEqual(["payment.id="]);
    expect(suggestKeys(names, "id")).toEqual(["cart.id=", "order.id=", "payment.id="]);
    expect(suggestKeys(names, "order.id=o")).toEqual([]);
  });
});
