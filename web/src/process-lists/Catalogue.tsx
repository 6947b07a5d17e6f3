// The plugin catalogue a process list can use, searchable as on the server (name, module, category,
// small typos forgiven).
import { useEffect, useState } from 'react';
import { getJson, PluginSummary } from '../api';

export default function Catalogue() {
  const [plugins, setPlugins] = useState<PluginSummary[]>([]);
  const [source, setSource] = useState('');
  const [query, setQuery] = useState('');
  const [error, setError] = useState<string | null>(null);

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
            <tr key={p.name}>
              <td>{p.name}{p.needs_gpu && <span className="badge">GPU</span>}</td>
              <td>{p.category}</td>
              <td>{p.summary}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
