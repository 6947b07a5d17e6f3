// A plugin read before it is added: its description, its parameters with defaults, and its citations.
import { useEffect, useState } from 'react';
import { PluginDetail, pluginDetail, valueText } from './client';

export default function PluginDetails({ name, onAdd }: { name: string; onAdd?: () => void }) {
  const [plugin, setPlugin] = useState<PluginDetail | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setPlugin(null);
    pluginDetail(name).then(setPlugin, (e: Error) => setError(e.message));
  }, [name]);
  if (error) return <p className="error" role="alert">{error}</p>;
  if (!plugin) return <p>Loading {name}…</p>;
  const shown = plugin.parameters.filter((p) => p.visibility !== 'hidden');
  return (
    <div className="pl-details" data-testid="plugin-details" aria-label={`About ${plugin.name}`}>
      <h3>{plugin.name} {plugin.needs_gpu && <span className="badge">GPU</span>}</h3>
      <p className="desc">{plugin.kind} · {plugin.category} · <code>{plugin.module}</code></p>
      <p>{plugin.summary || 'No description.'}</p>
      {onAdd && <button type="button" onClick={onAdd}>Add {plugin.name} to the list</button>}
      <table className="pl-params">
        <thead><tr><th>#</th><th>Parameter</th><th>Default</th><th>What it is</th></tr></thead>
        <tbody>
          {shown.map((p) => (
            <tr key={p.name}><td>{p.number ?? ''}</td><td className="name">{p.name}</td>
              <td><code>{valueText(p.default)}</code></td><td className="desc">{p.description} {p.visibility && p.visibility !== 'basic' ? `(${p.visibility})` : ''}</td></tr>
          ))}
        </tbody>
      </table>
      <h4>Citations</h4>
      {plugin.citations.length ? (
        <ul className="pl-citations">
          {plugin.citations.map((c, i) => <li key={i}>{c.description || c.short_name_article || 'Citation'}{c.doi && <> (doi <code>{c.doi}</code>)</>}</li>)}
        </ul>
      ) : <p className="desc">This plugin asks for no citation beyond Savu's own.</p>}
    </div>
  );
}
