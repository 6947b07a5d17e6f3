// The plugin catalogue a process list can use, searchable as on the server (name, module, category,
// small typos forgiven). A row opens the plugin's description, parameters and citations.
import { Fragment, useEffect, useState } from 'react';
import { getJson, PluginSummary } from '../api';
import PluginDetails from './PluginDetails';

export default function Catalogue() {
  const [plugins, setPlugins] = useState<PluginSummary[]>([]);
  const [source, setSource] = useState('');
  const [query, setQuery] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);

  useEffect(() => {
    const timer = window.setTimeout(() => {
      getJson<{ plugins: PluginSummary[]; source: string; savu_version: string }>(`/api/plugins?q=${encodeURIComponent(query)}`).then(
        (c) => { setPlugins(c.plugins); setSource(`${c.source === 'savu' ? 'installed Savu' : 'bundled catalogue of Savu'} ${c.savu_version}`); },
        (e: Error) => setError(e.message));
    }, query ? 200 : 0);
    return () => window.clearTimeout(timer);
  }, [query]);

  return (
    <div className="pl-card">
      <h2>Plugins</h2>
      <p>The plugins a process list can use ({plugins.length} shown, {source}).</p>
      <input type="search" placeholder="Search plugins" value={query} onChange={(e) => setQuery(e.target.value)}
             aria-label="Search plugins" />
      {error && <p className="error" role="alert">{error}</p>}
      <table className="plugins">
        <thead><tr><th>Plugin</th><th>Category</th><th>What it does</th></tr></thead>
        <tbody>
          {plugins.map((p) => (
            <Fragment key={p.name}>
              <tr className="pl-catalogue-row">
                <td><button type="button" className="pl-link" aria-expanded={open === p.name}
                            onClick={() => setOpen(open === p.name ? null : p.name)}>{open === p.name ? '▾' : '▸'} {p.name}</button>
                  {p.needs_gpu && <span className="badge">GPU</span>}</td>
                <td>{p.category}</td>
                <td>{p.summary}</td>
              </tr>
              {open === p.name && <tr><td colSpan={3}><PluginDetails name={p.name} /></td></tr>}
            </Fragment>
          ))}
        </tbody>
      </table>
    </div>
  );
}
