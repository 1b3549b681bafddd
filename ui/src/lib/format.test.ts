import { describe, expect, it } from "vitest";
import { bytesText, clock, duration, payloadText } from "./format";

describe("formatting", () => {
  it("writes durations at a readable scale", () => {
    expect(duration(0.84)).toBe("0.8 ms");
    expect(duration(412.4)).toBe("412 ms");
    expect(duration(3240)).toBe("3.2 s");
    expect(duration(250_000)).toBe("4 min 10 s");
    expect(duration(7_500_000)).toBe("2 h 5 min");
    expect(duration(3 * 86_400_000 + 4 * 3_600_000)).toBe("3 d 4 h");
    expect(duration(-1500)).toBe("-1.5 s");
    expect(duration(NaN)).toBe("–");
  });
  it("reads the clock time of an RFC 3339 time", () => {
    expect(clock("2026-11-29T07:27:34.808020Z")).toBe("07:27:34.808");
    expect(clock("2026-11-29T07:27:34Z")).toBe("07:27:34.000");
    expect(clock("garbage")).toBe("garbage");
  });
  it("pretty-prints JSON payloads and leaves everything else as it is", () => {
    expect(payloadText({ encoding: "utf8", data: '{"a":1,"b":[2]}' })).toEqual({ text: '{\n  "a": 1,\n  "b": [\n    2\n  ]\n}', json: true });
    expect(payloadText({ encoding: "utf8", data: "ADJ;<img src=x>" })).toEqual({ text: "ADJ;<img src=x>", json: false });
    expect(payloadText({ encoding: "utf8", data: "42" })).toEqual({ text: "42", json: false });
    expect(payloadText({ encoding: "base64", data: "//4=" })).toEqual({ text: "base64://4=", json: false });
    expect(bytesText(null)).toBe("(null)");
  });
});
