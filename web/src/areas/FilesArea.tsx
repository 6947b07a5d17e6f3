// Files: browse the roots; upload (button or drop, folders too, resumable), download (folders as zip),
// new folder, rename, move, copy, delete into the trash; read text files and logs, preview TIFFs.
// The place (root, folder, sort, filter, the open file, the trash) is in the URL, so a reload keeps it.
import { DragEvent, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { FileEntry, Listing, WhoAmI } from '../api';
import { href, navigate, withParams } from '../route';
import { Icon } from '../icons';
import { MessageLine, useMessage } from '../messages';
import {
  HDF5, TEXT, TIFF, copyItem, downloadUrl, formatSize, join, listFolder, makeFolder, moveItem, ref, trashItem, zipUrl,
} from '../files/client';
import { Uploader, UploadItem, droppedFiles, pickedFiles, uploader } from '../files/upload';
import { Ask, AskDialog } from '../files/AskDialog';
import { FileView } from '../files/FileView';
import { TrashView } from '../files/TrashView';

type SortKey = 'name' | 'size' | 'modified';

function sortEntries(entries: FileEntry[], key: SortKey, descending: boolean): FileEntry[] {
  const sign = descending ? -1 : 1;
  return [...entries].sort((a, b) => {
    if ((a.type === 'folder') !== (b.type === 'folder')) return a.type === 'folder' ? -1 : 1;  // folders first always
    const order = key === 'name' ? a.name.localeCompare(b.name, undefined, { numeric: true, sensitivity: 'base' })
      : key === 'size' ? (a.size ?? 0) - (b.size ?? 0) : a.modified - b.modified;
    return sign * (order || a.name.localeCompare(b.name));
  });
}

function Uploads({ items, uploader }: { items: UploadItem[]; uploader: Uploader }) {
  if (!items.length) return null;
  const total = items.reduce((sum, item) => sum + item.size, 0);
  const sent = items.reduce((sum, item) => sum + item.sent, 0);
  return (
    <section className="uploads" aria-label="Uploads">
      <div className="uploads-head">
        <strong>Uploads</strong> {formatSize(sent)} of {formatSize(total)}
        <progress max={total || 1} value={sent} aria-label="All uploads" />
        {items.some((item) => item.state === 'done') &&
          <button type="button" onClick={() => uploader.clearFinished()}>Clear finished</button>}
      </div>
      <ul>
        {items.map((item) => (
          <li key={item.key} data-upload={item.name} data-state={item.state}>
            <span className="filename">{item.name}</span>
            <progress max={item.size || 1} value={item.state === 'done' ? item.size || 1 : item.sent} />
            <span className="upload-state">
              {item.state === 'done' ? 'uploaded' : item.state === 'sending' ? `${Math.floor((100 * item.sent) / (item.size || 1))}%`
                : item.state === 'exists' ? 'already exists' : item.state}
            </span>
            {item.state === 'sending' && <button type="button" onClick={() => uploader.pause(item.key)}>Pause</button>}
            {(item.state === 'paused' || item.state === 'failed') &&
              <button type="button" onClick={() => uploader.resume(item.key)}>Resume</button>}
            {item.state === 'exists' && <button type="button" onClick={() => uploader.replace(item.key)}>Replace it</button>}
            {item.state !== 'done' && <button type="button" onClick={() => uploader.cancel(item.key)}>Cancel</button>}
            {item.error && <span className="upload-error">{item.error}</span>}
          </li>
        ))}
      </ul>
    </section>
  );
}

export default function FilesArea({ me, params }: { me: WhoAmI; params: URLSearchParams }) {
  const root = params.get('root') ?? me.roots[0]?.name ?? 'data';
  const path = params.get('path') ?? '';
  const filter = params.get('filter') ?? '';
  const [sortKey, sortOrder] = (params.get('sort') ?? 'name-asc').split('-') as [SortKey, string];
  const open = params.get('open');
  const showTrash = params.get('trash') === '1';
  const [listing, setListing] = useState<Listing | null>(null);
  const [version, setVersion] = useState(0);
  const [uploads, setUploads] = useState<UploadItem[]>([]);
  const [dragging, setDragging] = useState(false);
  const [ask, setAsk] = useState<Ask | null>(null);
  const { message, info, fail, clear } = useMessage();
  const fileInput = useRef<HTMLInputElement>(null);
  const folderInput = useRef<HTMLInputElement>(null);
  const refresh = useCallback(() => setVersion((v) => v + 1), []);
  useEffect(() => uploader.subscribe(setUploads, refresh), [refresh]);
  const go = (changes: Record<string, string>, replace = false) => navigate('files', withParams(params, changes), { replace });

  useEffect(() => {
    if (showTrash) return undefined;
    let current = true;
    listFolder(root, path).then((l) => current && setListing(l), (e) => {
      if (!current) return;
      setListing(null);
      fail(e);
    });
    return () => { current = false; };
  }, [root, path, version, showTrash, fail]);  // coming back from the trash: something may be restored

  useEffect(() => clear(), [root, path, clear]);  // a message is about the folder it was said in

  const writable = listing?.writable ?? false;
  const shown = useMemo(() => {
    const needle = filter.toLowerCase();
    const kept = (listing?.entries ?? []).filter((e) => !needle || e.name.toLowerCase().includes(needle));
    return sortEntries(kept, sortKey, sortOrder === 'desc');
  }, [listing, filter, sortKey, sortOrder]);
  const files = shown.filter((e) => e.type === 'file');
  const totalBytes = files.reduce((sum, e) => sum + (e.size ?? 0), 0);

  function sortBy(key: SortKey) {
    const descending = sortKey === key && sortOrder !== 'desc';
    go({ sort: `${key}-${descending ? 'desc' : 'asc'}` }, true);
  }

  async function act(doing: string, work: () => Promise<unknown>, done: string) {
    try {
      await work();
      info(done);
    } catch (e) {
      fail(e, doing);
    }
    refresh();
  }

  function newFolder() {
    setAsk({ title: 'New folder', label: 'Name', value: '', confirm: 'Create', onConfirm: (name) =>
      act(`Creating ${name}`, () => makeFolder(root, join(path, name)), `Folder ${name} created.`) });
  }

  function rename(entry: FileEntry) {
    setAsk({ title: `Rename ${entry.name}`, label: 'New name', value: entry.name, confirm: 'Rename', onConfirm: (name) =>
      act(`Renaming ${entry.name}`, () => moveItem(ref(root, join(path, entry.name)), ref(root, join(path, name))),
          `${entry.name} is now ${name}.`) });
  }

  function moveOrCopy(entry: FileEntry, copying: boolean) {
    const verb = copying ? 'Copy' : 'Move';
    setAsk({ title: `${verb} ${entry.name}`, label: 'To (root/folder/name)', value: ref(root, join(path, entry.name)),
             confirm: verb, onConfirm: (to) => act(`${copying ? 'Copying' : 'Moving'} ${entry.name}`,
               () => (copying ? copyItem : moveItem)(ref(root, join(path, entry.name)), to.replace(/^\/+/, '')),
               `${entry.name} ${copying ? 'copied' : 'moved'} to ${to}.`) });
  }

  function remove(entry: FileEntry) {
    setAsk({ title: `Delete ${entry.name}?`, text: `${entry.type === 'folder' ? 'The folder and everything in it' : 'The file'} goes to the trash, from where you can restore it until the trash is emptied.`,
             confirm: 'Move to trash', danger: true, onConfirm: () =>
               act(`Deleting ${entry.name}`, () => trashItem(root, join(path, entry.name)), `${entry.name} moved to the trash.`) });
  }

  async function onDrop(event: DragEvent) {
    event.preventDefault();
    setDragging(false);
    if (!writable) {
      info(`The ${root} folder is read-only: upload into processing or output.`);
      return;
    }
    uploader.add(await droppedFiles(event.dataTransfer), root, path);
  }

  const parts = path.split('/').filter(Boolean);
  const header = (key: SortKey, label: string) => (
    <th aria-sort={sortKey === key ? (sortOrder === 'desc' ? 'descending' : 'ascending') : 'none'}>
      <button type="button" className="linklike sort" onClick={() => sortBy(key)}>
        {label}{sortKey === key ? (sortOrder === 'desc' ? ' ▼' : ' ▲') : ''}
      </button>
    </th>
  );

  return (
    <section aria-labelledby="files-title" className={`files-area${dragging ? ' dragging' : ''}`}
             onDragOver={(e) => { e.preventDefault(); setDragging(true); }} onDragLeave={() => setDragging(false)}
             onDrop={(e) => void onDrop(e)} data-testid="files-area">
      <h1 id="files-title">Files</h1>
      <div className="roots" role="tablist" aria-label="Roots">
        {me.roots.map((r) => (
          <a key={r.name} role="tab" aria-selected={!showTrash && r.name === root}
             className={!showTrash && r.name === root ? 'active' : ''} href={href('files', { root: r.name })}>
            {r.name}{r.writable ? '' : ' (read-only)'}
          </a>
        ))}
        <a role="tab" aria-selected={showTrash} className={showTrash ? 'active' : ''}
           href={href('files', withParams(params, { trash: showTrash ? '' : '1' }))}>Trash</a>
      </div>
      <MessageLine message={message} onClose={clear} />
      {ask && <AskDialog ask={ask} onClose={() => setAsk(null)} />}
      {showTrash ? <TrashView onMessage={info} onError={fail} /> : (
        <>
          <nav className="breadcrumb" aria-label="Folder">
            <a href={href('files', { root })}>{root}</a>
            {parts.map((part, i) => (
              <span key={i}> / <a href={href('files', { root, path: parts.slice(0, i + 1).join('/') })}>{part}</a></span>
            ))}
          </nav>
          <div className="file-tools">
            <input type="search" placeholder="Filter by name" aria-label="Filter by name" value={filter}
                   onChange={(e) => go({ filter: e.target.value }, true)} />
            {writable && <>
              <button type="button" onClick={() => fileInput.current?.click()}>Upload files</button>
              <button type="button" onClick={() => folderInput.current?.click()}>Upload folder</button>
              <button type="button" onClick={newFolder}>New folder</button>
            </>}
            <a className="button" href={zipUrl(root, path)} download>Download folder as zip</a>
            <input ref={fileInput} type="file" multiple hidden data-testid="upload-files"
                   onChange={(e) => { uploader.add(pickedFiles(e.target.files), root, path); e.target.value = ''; }} />
            <input ref={folderInput} type="file" multiple hidden data-testid="upload-folder"
                   {...{ webkitdirectory: '', directory: '' }}
                   onChange={(e) => { uploader.add(pickedFiles(e.target.files), root, path); e.target.value = ''; }} />
          </div>
          {writable && <p className="drop-hint">Drop files or folders here to upload them into {ref(root, path)}.</p>}
          <Uploads items={uploads} uploader={uploader} />
          {open && <FileView root={root} path={join(path, open)} version={version}
                             onClose={() => go({ open: '' })} />}
          {listing && (
            <table className="files">
              <thead><tr>{header('name', 'Name')}{header('size', 'Size')}{header('modified', 'Modified')}<th>Actions</th></tr></thead>
              <tbody>
                {shown.length === 0 && <tr><td colSpan={4} className="empty">
                  {filter ? `Nothing here matches “${filter}”.` : 'This folder is empty.'}</td></tr>}
                {shown.map((entry) => (
                  <tr key={entry.name} data-entry={entry.name}>
                    <td>
                      {entry.type === 'folder' ? (
                        <a href={href('files', { root, path: join(path, entry.name) })}><Icon kind="folder" /> {entry.name}</a>
                      ) : HDF5.test(entry.name) ? (
                        <a href={href('viewer', { file: ref(root, join(path, entry.name)) })}><Icon kind="dataset" /> {entry.name}</a>
                      ) : TEXT.test(entry.name) || TIFF.test(entry.name) ? (
                        <a href={href('files', withParams(params, { open: entry.name }))}><Icon kind="file" /> {entry.name}</a>
                      ) : (
                        <span><Icon kind="file" /> {entry.name}</span>
                      )}
                    </td>
                    <td>{formatSize(entry.size)}</td>
                    <td>{new Date(entry.modified * 1000).toLocaleString()}</td>
                    <td className="row-actions">
                      {entry.type === 'folder'
                        ? <a href={zipUrl(root, join(path, entry.name))} download aria-label={`Download ${entry.name} as zip`}>Zip</a>
                        : <a href={downloadUrl(root, join(path, entry.name))} download={entry.name}
                             aria-label={`Download ${entry.name}`}>Download</a>}
                      {writable && <button type="button" className="linklike" onClick={() => rename(entry)}>Rename</button>}
                      {writable && <button type="button" className="linklike" onClick={() => moveOrCopy(entry, false)}>Move</button>}
                      <button type="button" className="linklike" onClick={() => moveOrCopy(entry, true)}>Copy</button>
                      {writable && <button type="button" className="linklike danger" onClick={() => remove(entry)}>Delete</button>}
                    </td>
                  </tr>
                ))}
              </tbody>
              <tfoot>
                <tr><td colSpan={4} className="totals" data-testid="totals">
                  {shown.length - files.length} folder{shown.length - files.length === 1 ? '' : 's'}, {files.length} file
                  {files.length === 1 ? '' : 's'}, {formatSize(totalBytes)}
                  {filter && listing.entries.length !== shown.length ? ` (of ${listing.entries.length} entries)` : ''}
                </td></tr>
              </tfoot>
            </table>
          )}
        </>
      )}
    </section>
  );
}
