import { useEffect, useState, type FormEvent } from "react";
import { api } from "../lib/api";
import { searchHref } from "../lib/routes";
import { suggestKeys } from "../lib/query";
import { useNavigation } from "../navigation";

/** The event asking the search box to take some text (`prefillSearch`). */
const PREFILL = "choreoscope:prefill";

/** Puts `text` into the search box and focuses it (e.g. `order.id=` from a key name). */
export function prefillSearch(text: string) {
  window.dispatchEvent(new CustomEvent<string>(PREFILL, { detail: text }));
}

/** The search box: a key (`order.id=o-1001`), a bare value, an event id or a trace id. */
export function SearchBox({ initial }: { initial: string }) {
  const { navigate } = useNavigation();
  const [text, setText] = useState(initial);
  const [names, setNames] = useState<string[]>([]);
  useEffect(() => setText(initial), [initial]);
  useEffect(() => {
    const onPrefill = (e: Event) => {
      setText((e as CustomEvent<string>).detail);
      document.getElementById("search-input")?.focus();
    };
    window.addEventListener(PREFILL, onPrefill);
    return () => window.removeEventListener(PREFILL, onPrefill);
  }, []);
  useEffect(() => {
    const controller = new AbortController();
    api.keyNames(controller.signal).then(
      (k) => setNames(k.names),
      () => setNames([]),
    );
    return () => controller.abort();
  }, []);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (text.trim() !== "") navigate(searchHref(text.trim()));
  };
  const suggestions = suggestKeys(names, text);
  return (
    <form className="search" role="search" onSubmit={submit}>
      <input
        id="search-input"
        data-testid="search-input"
        type="search"
        list="key-suggestions"
        value={text}
        onChange={(e) => setText(e.target.value)}
        placeholder="order.id=o-1001 · o-1001 · event id · trace id     ( / )"
        aria-label="Search by business key, event id or trace id"
        autoComplete="off"
        spellCheck={false}
      />
      <datalist id="key-suggestions" data-testid="key-suggestions">
        {suggestions.map((s) => (
          <option key={s} value={s} />
        ))}
      </datalist>
      <button type="submit">Find</button>
    </form>
  );
}
