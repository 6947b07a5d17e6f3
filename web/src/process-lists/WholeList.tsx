// The whole list at a glance, every plugin with every value at the chosen level: savu_config's
// `disp -v` as a view, and as text to copy into a logbook.
import { useEffect, useState } from 'react';
import { ProcessListDoc, ShownPlugin, wholeList } from './client';
import { dispText } from './format';

export default function WholeList({ path, doc, level }: { path: string; doc: ProcessListDoc; level: string }) {
  const [plugins, setPlugins] = useState<ShownPlugin[] | null>(null);
  const [open, setOpen] = useState(true);
  const [copied, setCopied] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (!open) return;
    wholeList(path, level).then((d) => { setPlugins(d.plugins); setError(null); }, (e: Error) => setError(e.message));
  }, [path, level, doc.etag, open]);
  const text = plugins ? dispText(doc.path, plugins, doc.loops) : '';

  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied('Copied the list as text.');
    } catch {
      // No clipboard permission (an http page that is not localhost): select it for Ctrl+C instead.
      const pre = document.querySelector('[data-testid=whole-list]');
      if (pre) window.getSelection()?.selectAllChildren(pre);
      setCopied('Selected: press Ctrl+C to copy.');
    }
  };

  return (
    <div className="pl-card">
      <h2>The whole list <button type="button" className="pl-link" aria-expanded={open} onClick={() => setOpen(!open)}>{open ? 'hide' : 'show'}</button></h2>
      {open && (
        <>
          <div className="pl-toolbar">
            <span className="desc">As <code>disp -v</code> shows it, at the {level} level.</span>
            <button type="button" onClick={() => void copy()} disabled={!plugins}>Copy as text</button>
            {copied && <span role="status">{copied}</span>}
          </div>
          {error && <p className="error" role="alert">{error}</p>}
          <pre className="pl-whole" data-testid="whole-list">{text}</pre>
        </>
      )}
    </div>
  );
}
