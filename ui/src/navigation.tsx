// Client-side navigation over the History API: one address per view, back/forward work, and
// links stay real links (open in a new tab, copy).

import { createContext, useCallback, useContext, useEffect, useState, type AnchorHTMLAttributes, type MouseEvent } from "react";
import { parseRoute, type Route } from "./lib/routes";

interface Navigation {
  route: Route;
  navigate: (href: string, options?: { replace?: boolean }) => void;
}

const NavigationContext = createContext<Navigation>({ route: { view: "home" }, navigate: () => {} });

/** Keeps the current route in step with the address bar. */
export function useNavigationState(): Navigation {
  const read = () => parseRoute(window.location.pathname, window.location.search);
  const [route, setRoute] = useState<Route>(read);
  useEffect(() => {
    const onPop = () => setRoute(read());
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);
  const navigate = useCallback((href: string, options?: { replace?: boolean }) => {
    if (options?.replace) window.history.replaceState(null, "", href);
    else window.history.pushState(null, "", href);
    setRoute(read());
    if (!options?.replace) window.scrollTo(0, 0);
  }, []);
  return { route, navigate };
}

export const NavigationProvider = NavigationContext.Provider;

/** The current route and `navigate`. */
export function useNavigation(): Navigation {
  return useContext(NavigationContext);
}

/** A link that navigates in place (a plain click) or as a browser link (modifier keys). */
export function Link({ href, onClick, ...rest }: AnchorHTMLAttributes<HTMLAnchorElement> & { href: string }) {
  const { navigate } = useNavigation();
  const click = (e: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(e);
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(href);
  };
  return <a href={href} onClick={click} {...rest} />;
}
