import { useEffect, useState } from 'react';
import { getJson, logout, WhoAmI } from './api';
import { describe } from './messages';
import { AREAS, href, useRoute } from './route';
import FilesArea from './areas/FilesArea';
import ProcessListsArea from './areas/ProcessListsArea';
import ViewerArea from './areas/ViewerArea';
import JobsArea from './areas/JobsArea';
import AdminArea, { GatewayMe } from './areas/AdminArea';

export default function App() {
  const route = useRoute();
  const [me, setMe] = useState<WhoAmI | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [admin, setAdmin] = useState(false);

  // Each area's last place (its hash), so its tab returns there rather than to its start; kept for the tab.
  const [places, setPlaces] = useState<Record<string, string>>(() => {
    try {
      return JSON.parse(sessionStorage.getItem('hebi.places') ?? '{}') as Record<string, string>;
    } catch {
      return {};
    }
  });
  useEffect(() => {
    setPlaces((old) => {
      const next = { ...old, [route.area]: window.location.hash || href(route.area) };
      sessionStorage.setItem('hebi.places', JSON.stringify(next));
      return next;
    });
  }, [route]);

  useEffect(() => {
    getJson<WhoAmI>('/api/whoami').then(setMe, (e) => setError(describe(e)));
    // The gateway's own view of the login: whether to show the Admin tab.
    getJson<GatewayMe>('/gateway/api/me').then((g) => setAdmin(g.admin), () => setAdmin(false));
  }, []);

  return (
    <div className="app">
      <header className="topbar">
        <span className="brand">hebi</span>
        <nav aria-label="Areas">
          {AREAS.filter((area) => area.id !== 'admin' || admin).map((area) => (
            <a key={area.id} href={route.area === area.id ? href(area.id) : places[area.id] ?? href(area.id)} className={route.area === area.id ? 'active' : ''}
               aria-current={route.area === area.id ? 'page' : undefined}>
              {area.label}
            </a>
          ))}
        </nav>
        <span className="user" data-testid="user-name">{me?.user ?? ''}</span>
        <button type="button" className="logout" onClick={() => void logout()}>Log out</button>
      </header>
      <main className="content">
        {error && <p className="error" role="alert">{error}</p>}
        {me && route.area === 'files' && <FilesArea me={me} params={route.params} />}
        {me && route.area === 'process-lists' && <ProcessListsArea />}
        {me && route.area === 'viewer' && <ViewerArea params={route.params} />}
        {me && route.area === 'jobs' && <JobsArea me={me} params={route.params} />}
        {me && admin && route.area === 'admin' && <AdminArea />}
      </main>
    </div>
  );
}
