import { useEffect, useState } from "react";
import { Link, NavigationProvider, useNavigationState } from "./navigation";
import { SearchBox } from "./components/SearchBox";
import { FlowView } from "./components/FlowView";
import { EventView } from "./components/EventView";
import { MapView } from "./components/MapView";
import { HomeView } from "./components/HomeView";
import { SearchView } from "./components/SearchView";
import { ServicesView } from "./components/ServicesView";
import { CatchUpBanner } from "./components/CatchUpBanner";
import { LoginView } from "./components/LoginView";
import { loginNeed, logOut, onLoginNeed, type LoginNeed } from "./lib/session";
import { api, type Me } from "./lib/api";

type Theme = "dark" | "light";

function initialTheme(): Theme {
  const saved = localStorage.getItem("choreoscope.theme");
  if (saved === "dark" || saved === "light") return saved;
  return window.matchMedia?.("(prefers-color-scheme: light)").matches ? "light" : "dark";
}

/** The viewer: a header with the search box, and the view of the current address. */
export function App() {
  const navigation = useNavigationState();
  const [theme, setTheme] = useState<Theme>(initialTheme);
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem("choreoscope.theme", theme);
  }, [theme]);
  // `/` anywhere (outside a text field) goes to the search box.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement | null;
      if (e.key === "/" && !(t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT"))) {
        e.preventDefault();
        document.getElementById("search-input")?.focus();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
  const [need, setNeed] = useState<LoginNeed>(loginNeed);
  useEffect(() => onLoginNeed(setNeed), []);
  const [me, setMe] = useState<Me | null>(null);
  useEffect(() => {
    const abort = new AbortController();
    api.me(abort.signal).then(setMe, () => setMe(null));
    return () => abort.abort();
  }, []);
  const { route } = navigation;
  return (
    <NavigationProvider value={navigation}>
      <header className="topbar">
        <Link href="/" className="brand" aria-label="Choreoscope home">
          Choreoscope
        </Link>
        <SearchBox initial={route.view === "search" ? route.q : ""} />
        <nav className="topnav">
          <Link href="/map" aria-current={route.view === "map" ? "page" : undefined}>
            Map
          </Link>
          <Link href="/services" aria-current={route.view === "services" ? "page" : undefined} data-testid="nav-services">
            Services
          </Link>
          {me && me.via !== "none" && (
            <span className="who" data-testid="who" title={me.topics ? `Topics: ${me.topics.join(", ")}` : "Every topic"}>
              {me.name} · {me.role}
              {(me.via === "token" || me.via === "oidc") && (
                <button
                  type="button"
                  className="link"
                  data-testid="logout"
                  onClick={() => logOut().then(() => window.location.reload())}
                >
                  Log out
                </button>
              )}
            </span>
          )}
          <button
            type="button"
            className="theme-toggle"
            data-testid="theme-toggle"
            onClick={() => setTheme(theme === "dark" ? "light" : "dark")}
            aria-label={`Switch to the ${theme === "dark" ? "light" : "dark"} theme`}
            title={`Switch to the ${theme === "dark" ? "light" : "dark"} theme`}
          >
            {theme === "dark" ? "☀" : "☾"}
          </button>
        </nav>
      </header>
      <CatchUpBanner />
      <main className="main">
        {need && <LoginView detail={need.detail} />}
        {!need && route.view === "home" && <HomeView />}
        {!need && route.view === "search" && <SearchView q={route.q} />}
        {!need && route.view === "flow" && <FlowView target={route.target} selected={route.selected} />}
        {!need && route.view === "event" && <EventView id={route.id} />}
        {!need && route.view === "map" && <MapView from={route.from} to={route.to} />}
        {!need && route.view === "services" && <ServicesView window={route.window} />}
        {!need && route.view === "not_found" && (
          <section className="page">
            <h1>Nothing here</h1>
            <p>
              No view answers <code>{route.path}</code>. Try the search box, or <Link href="/map">the map</Link>.
            </p>
          </section>
        )}
      </main>
    </NavigationProvider>
  );
}
