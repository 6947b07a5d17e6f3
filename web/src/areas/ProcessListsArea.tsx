// Process lists: the lists in the user's processing folder, and the editor of the one opened
// (#/process-lists?folder=recon&path=recon/standard.nxs).
import { FormEvent, useEffect, useState } from 'react';
import { href, useRoute } from '../route';
import { createList, Folder, getFolder } from '../process-lists/client';
import Catalogue from '../process-lists/Catalogue';
import Editor from '../process-lists/Editor';
import '../process-lists/editor.css';

export default function ProcessListsArea() {
  const { params } = useRoute();
  const path = params.get('path') ?? '';
  const folder = params.get('folder') ?? (path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '');
  const [listing, setListing] = useState<Folder | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [name, setName] = useState('');
  const [refresh, setRefresh] = useState(0);

  useEffect(() => {
    getFolder(folder).then((f) => { setListing(f); setError(null); }, (e: Error) => setError(e.message));
  }, [folder, refresh]);

  const create = (e: FormEvent) => {
    e.preventDefault();
    const file = name.trim().endsWith('.nxs') ? name.trim() : `${name.trim()}.nxs`;
    const target = folder ? `${folder}/${file}` : file;
    createList(target).then(() => {
      setName('');
      setRefresh((n) => n + 1);
      window.location.hash = href('process-lists', { folder, path: target });
    }, (err: Error) => setError(err.message));
  };

  const parent = folder.includes('/') ? folder.slice(0, folder.lastIndexOf('/')) : '';
  return (
    <section aria-labelledby="pl-title">
      <h1 id="pl-title">Process lists</h1>
      {error && <p className="error" role="alert">{error}</p>}
      <div className="pl-layout">
        <aside className="pl-side" aria-label="Process lists in the folder">
          <strong>processing/{folder}</strong>
          <ul>
            {folder && <li><a href={href('process-lists', { folder: parent })}>↑ up</a></li>}
            {listing?.folders.map((f) => <li key={f.path}><a href={href('process-lists', { folder: f.path })}>{f.name}/</a></li>)}
            {listing?.lists.map((l) => (
              <li key={l.path}><a className={l.path === path ? 'current' : ''} href={href('process-lists', { folder, path: l.path })}>{l.name}</a></li>
            ))}
            {listing && !listing.lists.length && !listing.folders.length && <li className="empty">No process lists here.</li>}
          </ul>
          <form onSubmit={create}>
            <input type="text" placeholder="new_list.nxs" value={name} onChange={(e) => setName(e.target.value)} aria-label="New process list name" required />
            <button type="submit">New</button>
          </form>
        </aside>
        {path ? (
          <Editor path={path} onDeleted={() => { setRefresh((n) => n + 1); window.location.hash = href('process-lists', { folder }); }} />
        ) : (
          <div className="pl-main">
            <p>Open a process list on the left, or create a new one.</p>
            <Catalogue />
          </div>
        )}
      </div>
    </section>
  );
}
