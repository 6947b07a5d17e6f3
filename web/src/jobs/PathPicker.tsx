// A path field of the job form: typed, chosen from recent values, or picked by browsing the roots.
import { useEffect, useState } from 'react';
import { Listing, WhoAmI } from '../api';
import { describe } from '../messages';
import { Icon } from '../icons';
import { join, listFolder, ref } from '../files/client';

export interface PickerProps {
  me: WhoAmI;
  label: string;
  name: string;
  value: string;
  onChange: (value: string) => void;
  /** 'file': a file matching ``accept`` (or, with ``folders``, a folder too); 'folder': a folder only. */
  pick: 'file' | 'folder';
  accept?: RegExp;
  folders?: boolean;
  startRoot: string;
  recent: string[];
  /** May be left empty. */
  optional?: boolean;
}

function Browser({ me, props, onPick, onClose }: { me: WhoAmI; props: PickerProps; onPick: (value: string) => void; onClose: () => void }) {
  const start = props.value.split('/');
  const known = me.roots.some((r) => r.name === start[0]);
  const [root, setRoot] = useState(known ? start[0] : props.startRoot);
  const [path, setPath] = useState(known ? start.slice(1, props.pick === 'folder' ? undefined : -1).join('/') : '');
  const [listing, setListing] = useState<Listing | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    listFolder(root, path).then((l) => { setListing(l); setError(null); }, (e) => {
      setListing(null);
      if (path) setPath('');  // the folder is gone: start again at the root
      else setError(describe(e));
    });
  }, [root, path]);

  const wantFolder = props.pick === 'folder' || props.folders;
  return (
    <div className="ask-backdrop" onKeyDown={(e) => e.key === 'Escape' && onClose()}>
      <div className="ask picker" role="dialog" aria-modal="true" aria-label={`Choose the ${props.label.toLowerCase()}`}>
        <h2>Choose the {props.label.toLowerCase()}</h2>
        <div className="roots">
          {me.roots.map((r) => (
            <button key={r.name} type="button" className={r.name === root ? 'active' : ''}
                    onClick={() => { setRoot(r.name); setPath(''); }}>{r.name}</button>
          ))}
        </div>
        <p className="breadcrumb">
          <button type="button" className="linklike" onClick={() => setPath('')}>{root}</button>
          {path.split('/').filter(Boolean).map((part, i, all) => (
            <span key={i}> / <button type="button" className="linklike"
                                     onClick={() => setPath(all.slice(0, i + 1).join('/'))}>{part}</button></span>
          ))}
        </p>
        {error && <p className="error" role="alert">{error}</p>}
        <ul className="picker-list">
          {listing?.entries.filter((e) => e.type === 'folder' || (props.pick === 'file' && (!props.accept || props.accept.test(e.name))))
            .map((entry) => (
              <li key={entry.name}>
                {entry.type === 'folder'
                  ? <button type="button" className="linklike" onClick={() => setPath(join(path, entry.name))}>
                      <Icon kind="folder" /> {entry.name}</button>
                  : <button type="button" className="linklike" onClick={() => onPick(ref(root, join(path, entry.name)))}>
                      <Icon kind="file" /> {entry.name}</button>}
              </li>
            ))}
          {listing && listing.entries.length === 0 && <li className="empty">This folder is empty.</li>}
        </ul>
        <div className="ask-buttons">
          <button type="button" onClick={onClose}>Cancel</button>
          {wantFolder && <button type="button" className="primary" onClick={() => onPick(ref(root, path))}>
            Choose {ref(root, path)}</button>}
        </div>
      </div>
    </div>
  );
}

export function PathPicker(props: PickerProps) {
  const [browsing, setBrowsing] = useState(false);
  const list = `${props.name}-recent`;
  return (
    <label className="path-picker">{props.label}
      <span className="path-picker-row">
        <input value={props.value} onChange={(e) => props.onChange(e.target.value)} name={props.name} list={list}
               required={!props.optional} spellCheck={false} placeholder={props.pick === 'folder' ? 'output/folder' : `${props.startRoot}/…`} />
        <button type="button" onClick={() => setBrowsing(true)} aria-label={`Browse for the ${props.label.toLowerCase()}`}>Browse…</button>
      </span>
      <datalist id={list}>{props.recent.map((value) => <option key={value} value={value} />)}</datalist>
      {browsing && <Browser me={props.me} props={props} onClose={() => setBrowsing(false)}
                            onPick={(value) => { props.onChange(value); setBrowsing(false); }} />}
    </label>
  );
}
