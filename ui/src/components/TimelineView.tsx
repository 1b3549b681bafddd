import { useEffect, useMemo, useRef, useState, type MouseEvent } from "react";
import type { EventSummary, GraphEdge } from "../lib/api";
import { clock, duration } from "../lib/format";
import { serviceColor } from "../lib/layout";
import { buildTimeline, type Timeline } from "../lib/timeline";

const LANE = 30;
const PAD = 12; // pixels kept free at both ends of the axis
const HIT = 8; // pixels around a dot that still hit it

/**
 * The flow's events in one lane per service on one time axis, hops drawn between lanes. Drawn on
 * a canvas: a 2,000-event flow is two thousand dots, which as SVG elements cost more to lay out
 * than the graph itself. A click picks the nearest dot of the lane.
 */
export function TimelineView({
  events,
  edges,
  selected,
  onSelect,
}: {
  events: EventSummary[];
  edges: GraphEdge[];
  selected: string | null;
  onSelect: (id: string) => void;
}) {
  const t = useMemo(() => buildTimeline(events, edges), [events, edges]);
  const canvas = useRef<HTMLCanvasElement>(null);
  const [width, setWidth] = useState(0);
  const [theme, setTheme] = useState(document.documentElement.dataset.theme);
  useEffect(() => {
    const el = canvas.current?.parentElement;
    if (!el) return;
    setWidth(el.clientWidth);
    if (typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(() => setWidth(el.clientWidth));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  useEffect(() => {
    const observer = new MutationObserver(() => setTheme(document.documentElement.dataset.theme));
    observer.observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
    return () => observer.disconnect();
  }, []);
  useEffect(() => {
    if (canvas.current && width > 0) draw(canvas.current, t, width, selected);
  }, [t, width, selected, theme]);
  if (t.lanes.length === 0) return null;
  const pick = (e: MouseEvent<HTMLCanvasElement>) => {
    const box = e.currentTarget.getBoundingClientRect();
    const hit = nearest(t, width, e.clientX - box.left, e.clientY - box.top);
    if (hit) onSelect(hit);
  };
  return (
    <section className="timeline" data-testid="timeline" aria-label="Timeline, one lane per service">
      <div className="timeline-labels">
        {t.lanes.map((lane) => (
          <div key={lane.service} className="timeline-label" style={{ height: LANE }} data-testid="timeline-lane">
            <span className="swatch" style={{ background: serviceColor(lane.service) }} />
            {lane.service}
          </div>
        ))}
      </div>
      <div className="timeline-track">
        <canvas
          ref={canvas}
          onClick={pick}
          data-testid="timeline-canvas"
          data-event-count={events.length}
          role="img"
          aria-label={`${events.length} events over ${duration((t.endUs - t.startUs) / 1000)} in ${t.lanes.length} services`}
          style={{ width: "100%", height: t.lanes.length * LANE, display: "block", cursor: "pointer" }}
        />
        <div className="timeline-axis">
          <span>{t.first ? clock(t.first.time) : ""}</span>
          <span>{duration((t.endUs - t.startUs) / 1000)}</span>
          <span>{t.last ? clock(t.last.time) : ""}</span>
        </div>
      </div>
    </section>
  );
}

/** The canvas's colours per theme (the same as styles.css's variables of those names). */
const CANVAS_COLOURS = {
  dark: { "--bg": "#14161a", "--grid": "#2a2e36", "--edge": "#8a8f98", "--danger": "#ff6b6b", "--failed": "#ff6b6b", "--accent": "#6ea8fe" },
  light: { "--bg": "#ffffff", "--grid": "#e6e8ec", "--edge": "#7a808a", "--danger": "#d1242f", "--failed": "#d1242f", "--accent": "#1f6feb" },
};

const xOf = (at: number, width: number) => PAD + at * Math.max(width - 2 * PAD, 1);
const yOf = (lane: number) => lane * LANE + LANE / 2;

function draw(el: HTMLCanvasElement, t: Timeline, width: number, selected: string | null) {
  const ratio = window.devicePixelRatio || 1;
  const height = t.lanes.length * LANE;
  el.width = Math.round(width * ratio);
  el.height = Math.round(height * ratio);
  const c = el.getContext("2d");
  if (!c) return;
  // The theme's colours, from a table rather than the style sheet: reading computed styles here
  // forced a style pass over the whole page before the graph's first paint.
  const colours = CANVAS_COLOURS[document.documentElement.dataset.theme === "light" ? "light" : "dark"];
  const colour = (name: keyof typeof colours) => colours[name];
  c.scale(ratio, ratio);
  c.clearRect(0, 0, width, height);
  c.lineWidth = 1;
  c.strokeStyle = colour("--grid");
  t.lanes.forEach((_, i) => {
    c.beginPath();
    c.moveTo(0, yOf(i));
    c.lineTo(width, yOf(i));
    c.stroke();
  });
  c.globalAlpha = 0.6;
  for (const cycle of [false, true]) {
    c.strokeStyle = colour(cycle ? "--danger" : "--edge");
    c.beginPath();
    for (const h of t.hops) {
      if (h.cycle !== cycle) continue;
      c.moveTo(xOf(h.from[1], width), yOf(h.from[0]));
      c.lineTo(xOf(h.to[1], width), yOf(h.to[0]));
    }
    c.stroke();
  }
  c.globalAlpha = 1;
  const background = colour("--bg");
  t.lanes.forEach((lane, i) => {
    c.fillStyle = serviceColor(lane.service);
    c.strokeStyle = background;
    c.lineWidth = 1.5;
    for (const { event, at } of lane.events) {
      c.beginPath();
      c.arc(xOf(at, width), yOf(i), 5, 0, 2 * Math.PI);
      c.fill();
      c.stroke();
      if ((event.flags as string[]).some((f) => f === "dead_lettered" || f === "handler_failed")) {
        // A dead-lettered event: a red ring, as its node is red.
        c.save();
        c.strokeStyle = colour("--failed");
        c.lineWidth = 2;
        c.beginPath();
        c.arc(xOf(at, width), yOf(i), 7, 0, 2 * Math.PI);
        c.stroke();
        c.restore();
      }
      if (event.id === selected) {
        c.save();
        c.strokeStyle = colour("--accent");
        c.lineWidth = 2.5;
        c.beginPath();
        c.arc(xOf(at, width), yOf(i), 8, 0, 2 * Math.PI);
        c.stroke();
        c.restore();
      }
    }
  });
}

/** The id of the event whose dot is nearest to (x, y), within [`HIT`] pixels. */
function nearest(t: Timeline, width: number, x: number, y: number): string | null {
  const lane = Math.floor(y / LANE);
  let best: string | null = null;
  let distance = HIT;
  for (const { event, at } of t.lanes[lane]?.events ?? []) {
    const d = Math.abs(xOf(at, width) - x);
    if (d <= distance) {
      distance = d;
      best = event.id;
    }
  }
  return best;
}
