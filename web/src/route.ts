// The app's location lives in the URL hash (#/files?root=data&path=scan), so reloads and links keep
// the place, and nginx needs no knowledge of the app's routes.
import { useEffect, useState } from 'react';

export type Area = 'files' | 'process-lists' | 'viewer' | 'jobs';
export const AREAS: { id: Area; label: string }[] = [
  { id: 'files', label: 'Files' },
  { id: 'process-lists', label: 'Process lists' },
  { id: 'viewer', label: 'Viewer' },
  { id: 'jobs', label: 'Jobs' },
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
  const query = new URLSearchParams(params).toString();
  return `#/${area}${query ? `?${query}` : ''}`;
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
