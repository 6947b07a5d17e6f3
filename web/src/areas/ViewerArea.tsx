import { useEffect, useState } from 'react';
import { EntityMeta, getJson } from '../api';
import { href } from '../route';

function describe(entity: EntityMeta): string {
  if (entity.kind === 'dataset') return `dataset ${JSON.stringify(entity.shape ?? [])} ${String(entity.dtype ?? '')}`;
  if (entity.kind === 'group') return 'group';
  return entity.kind.replace('_', ' ');
}

export default function ViewerArea({ params }: { params: URLSearchParams }) {
  const file = params.get('file');
  const path = params.get('path') ?? '/';
  const [meta, setMeta] = useState<EntityMeta | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (!file) return;
    setError(null);
    getJson<EntityMeta>(`/data/meta?file=${encodeURIComponent(file)}&path=${encodeURIComponent(path)}`).then(
      setMeta,
      (e: Error) => {
        setMeta(null);
        setError(e.message);
      },
    );
  }, [file, path]);

  if (!file) {
    return (
      <section>
        <h1>Viewer</h1>
        <p>Open an HDF5 or NeXus file from <a href={href('files')}>Files</a> to look inside it.</p>
      </section>
    );
  }
  const child = (name: string) => `${path === '/' ? '' : path}/${name}`;
  const parent = path.split('/').slice(0, -1).join('/') || '/';
  return (
    <section>
      <h1>Viewer</h1>
      <p className="filename">{file} <code>{path}</code></p>
      {path !== '/' && <p><a href={href('viewer', { file, path: parent })}>↑ up</a></p>}
      {error && <p className="error" role="alert">{error}</p>}
      {meta && (
        <>
          <p>{describe(meta)}</p>
          {meta.children && (
            <ul className="entities">
              {meta.children.map((c) => (
                <li key={c.name}>
                  {c.kind === 'group' ? (
                    <a href={href('viewer', { file, path: child(c.name) })}>{c.name}</a>
                  ) : (
                    <span>{c.name}</span>
                  )}{' '}
                  <small>{describe(c)}</small>
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  );
}
