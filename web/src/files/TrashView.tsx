// The user's trash: what was deleted, from where; put back, or emptied for good (asked first).
import { useCallback, useEffect, useState } from 'react';
import { Trash } from '../api';
import { Ask, AskDialog } from './AskDialog';
import { emptyTrash, formatSize, listTrash, restoreItem } from './client';

export function TrashView({ onMessage, onError }: { onMessage: (text: string) => void; onError: (e: unknown, doing?: string) => void }) {
  const [trash, setTrash] = useState<Trash | null>(null);
  const [ask, setAsk] = useState<Ask | null>(null);
  const load = useCallback(() => listTrash().then(setTrash, (e) => onError(e)), [onError]);
  useEffect(() => { void load(); }, [load]);

  async function restore(id: string, path: string) {
    try {
      await restoreItem(id);
      onMessage(`${path} is back.`);
    } catch (e) {
      onError(e, `Restoring ${path}`);
    }
    void load();
  }

  function empty() {
    setAsk({ title: 'Empty the trash?', text: `${trash?.items.length} item(s), ${formatSize(trash?.total_bytes)}, are deleted for good. This cannot be undone.`,
             confirm: 'Empty the trash', danger: true, onConfirm: async () => {
               try {
                 const { removed } = await emptyTrash();
                 onMessage(`The trash is empty (${removed} item${removed === 1 ? '' : 's'} deleted for good).`);
               } catch (e) {
                 onError(e, 'Emptying the trash');
               }
               void load();
             } });
  }

  if (!trash) return null;
  return (
    <section aria-label="Trash" className="trash">
      {ask && <AskDialog ask={ask} onClose={() => setAsk(null)} />}
      <p>
        {trash.items.length ? `${trash.items.length} item${trash.items.length === 1 ? '' : 's'}, ${formatSize(trash.total_bytes)}.`
                            : 'The trash is empty.'}
        {trash.items.length > 0 && <button type="button" className="danger" onClick={empty}>Empty trash</button>}
      </p>
      {trash.items.length > 0 && (
        <table className="files">
          <thead><tr><th>Was at</th><th>Size</th><th>Deleted</th><th></th></tr></thead>
          <tbody>
            {trash.items.map((item) => (
              <tr key={item.id} data-trash={item.path}>
                <td className="filename">{item.path}{item.folder ? '/' : ''}</td>
                <td>{formatSize(item.size)}</td>
                <td>{new Date(item.deleted * 1000).toLocaleString()}</td>
                <td><button type="button" onClick={() => void restore(item.id, item.path)}>Restore</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
