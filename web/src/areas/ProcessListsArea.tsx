import { useEffect, useMemo, useState } from 'react';
import { getJson, PluginSummary } from '../api';

export default function ProcessListsArea() {
  const [plugins, setPlugins] = useState<PluginSummary[]>([]);
  const [query, setQuery] = useState('');
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    getJson<{ plugins: PluginSummary[] }>('/api/plugins').then((c) => setPlugins(c.plugins), (e: Error) => setError(e.message));
  }, []);

  const shown = useMemo(() => {
    const q = query.trim().toLowerCase();
    return q ? plugins.filter((p) => `${p.name} ${p.category} ${p.module}`.toLowerCase().includes(q)) : plugins;
  }, [plugins, query]);

  return (
    <section>
      <h1>Process lists</h1>
      <p>The plugins a process list can use ({plugins.length} in the catalogue).</p>
      <input type="search" placeholder="Search plugins" value={query} onChange={(e) => setQuery(e.target.value)}
             aria-label="Search plugins" />
      {error && <p className="error" role="alert">{error}</p>}
      <table className="plugins">
        <thead><tr><th>Plugin</th><th>Category</th><th>What it does</th></tr></thead>
        <tbody>
          {shown.map((p) => (
            <tr key={p.name}>
              <td>{p.name}{p.needs_gpu && <span className="badge">GPU</span>}</td>
              <td>{p.category}</td>
              <td>{p.summary}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
