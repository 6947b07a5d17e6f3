// The app's location lives in the URL hash (#/files?root=data&path=scan), so reloads and links keep
// the place, and nginx needs no knowledge of the app's routes.
import { useEffect, useState } from 'react';

export type Area = 'files' | 'process-lists' | 'viewer' | 'jobs' | 'admin';
export const AREAS: { id: Area; label: string }[] = [
  { id: 'files', label: 'Files' },
  { id: 'process-lists', label: 'Process lists' },
  { id: 'viewer', label: 'Viewer' },
  { id: 'jobs', label: 'Jobs' },
  // Shown to admins only (App asks the gateway's /gateway/api/me).
  { id: 'admin', label: 'Admin' },
];

export interface Route {
  area: Area;
  params: URLSearchParams;
}

function parse(hash: string): Route {
  const [path, query = ''] = hash.replace(/^#\/?/, '').split('?');
  const area = (AREAS.find((a) => a.id === path)?.id ?? 'files') as Area;
  return { area, params: new URLSearchParams(query) };
}

export function href(area: Area, params: Record<string, string> = {}): string {
  const kept = Object.fromEntries(Object.entries(params).filter(([, value]) => value !== '' && value !== undefined));
  const query = new URLSearchParams(kept).toString();
  return `#/${area}${query ? `?${query}` : ''}`;
}

/** Go to a place of the app. ``replace``: change the current history entry (typing in a filter box)
 *  instead of adding one, so "back" goes to the previous place rather than the previous keystroke. */
export function navigate(area: Area, params: Record<string, string> = {}, { replace = false } = {}): void {
  const target = href(area, params);
  if (target === window.location.hash) return;
  if (replace) {
    window.history.replaceState(window.history.state, '', target);
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else {
    window.location.hash = target;
  }
}

/** The current parameters with some changed ('' removes one). */
export function withParams(params: URLSearchParams, changes: Record<string, string>): Record<string, string> {
  const next = Object.fromEntries(params.entries());
  for (const [key, value] of Object.entries(changes)) {
    if (value === '') delete next[key];
    else next[key] = value;
  }
  return next;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parse(window.location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parse(window.location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
