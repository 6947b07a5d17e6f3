import { useEffect, useState } from 'react';
import { getJson, Listing, WhoAmI } from '../api';
import { href } from '../route';
import { Icon } from '../icons';

const HDF5 = /\.(nxs|h5|hdf5?|hdf)$/i;

function formatSize(size: number | null): string {
  if (size === null) return '';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

export default function FilesArea({ me, params }: { me: WhoAmI; params: URLSearchParams }) {
  const root = params.get('root') ?? me.roots[0]?.name ?? 'data';
  const path = params.get('path') ?? '';
  const [listing, setListing] = useState<Listing | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    setError(null);
    getJson<Listing>(`/api/files?root=${encodeURIComponent(root)}&path=${encodeURIComponent(path)}`).then(
      setListing,
      (e: Error) => {
        setListing(null);
        setError(e.message);
      },
    );
  }, [root, path]);

  const parts = path.split('/').filter(Boolean);
  const join = (name: string) => (path ? `${path}/${name}` : name);

  return (
    <section aria-labelledby="files-title">
      <h1 id="files-title">Files</h1>
      <div className="roots" role="tablist" aria-label="Roots">
        {me.roots.map((r) => (
          <a key={r.name} role="tab" aria-selected={r.name === root} className={r.name === root ? 'active' : ''}
             href={href('files', { root: r.name })}>
            {r.name}{r.writable ? '' : ' (read-only)'}
          </a>
        ))}
      </div>
      <nav className="breadcrumb" aria-label="Folder">
        <a href={href('files', { root })}>{root}</a>
        {parts.map((part, i) => (
          <span key={i}> / <a href={href('files', { root, path: parts.slice(0, i + 1).join('/') })}>{part}</a></span>
        ))}
      </nav>
      {error && <p className="error" role="alert">{error}</p>}
      {listing && (
        <table className="files">
          <thead><tr><th>Name</th><th>Size</th><th>Modified</th></tr></thead>
          <tbody>
            {listing.entries.length === 0 && <tr><td colSpan={3} className="empty">This folder is empty.</td></tr>}
            {listing.entries.map((entry) => (
              <tr key={entry.name}>
                <td>
                  {entry.type === 'folder' ? (
                    <a href={href('files', { root, path: join(entry.name) })}><Icon kind="folder" /> {entry.name}</a>
                  ) : HDF5.test(entry.name) ? (
                    <a href={href('viewer', { file: `${root}/${join(entry.name)}` })}><Icon kind="dataset" /> {entry.name}</a>
                  ) : (
                    <span><Icon kind="file" /> {entry.name}</span>
                  )}
                </td>
                <td>{formatSize(entry.size)}</td>
                <td>{new Date(entry.modified * 1000).toLocaleString()}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
