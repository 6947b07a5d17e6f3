import { useEffect, useState } from 'react';
import { getJson, logout, WhoAmI } from './api';
import { AREAS, href, useRoute } from './route';
import FilesArea from './areas/FilesArea';
import ProcessListsArea from './areas/ProcessListsArea';
import ViewerArea from './areas/ViewerArea';
import JobsArea from './areas/JobsArea';

export default function App() {
  const route = useRoute();
  const [me, setMe] = useState<WhoAmI | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    getJson<WhoAmI>('/api/whoami').then(setMe, (e: Error) => setError(e.message));
  }, []);

  return (
    <div className="app">
      <header className="topbar">
        <span className="brand">hebi</span>
        <nav aria-label="Areas">
          {AREAS.map((area) => (
            <a key={area.id} href={href(area.id)} className={route.area === area.id ? 'active' : ''}
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
        {me && route.area === 'jobs' && <JobsArea />}
      </main>
    </div>
  );
}
