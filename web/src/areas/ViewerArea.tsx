// The Viewer area: h5web (the field's HDF5 viewer) over the session's dataserver, which speaks
// h5grove's API under /data/. The file opens on its NeXus default plot, found by the dataserver by
// following `default` attributes (never assuming /entry), or on the path named in the address.
import { lazy, Suspense, useEffect, useState } from 'react';
import { getJson } from '../api';
import { href } from '../route';

const H5WebViewer = lazy(() => import('../viewer/H5WebViewer'));

interface DefaultPlot {
  found: boolean;
  nxdata?: string | null;
  signal?: string | null;
}

export default function ViewerArea({ params }: { params: URLSearchParams }) {
  const file = params.get('file');
  const askedPath = params.get('path');
  // undefined while the default plot is being looked up; then a path, or '/' when there is none.
  const [initialPath, setInitialPath] = useState<string | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    setError(null);
    setInitialPath(undefined);
    if (!file) return;
    if (askedPath) {
      setInitialPath(askedPath);
      return;
    }
    getJson<DefaultPlot>(`/data/default?file=${encodeURIComponent(file)}`).then(
      (plot) => setInitialPath((plot.found && (plot.nxdata ?? plot.signal)) || '/'),
      (e: Error) => {
        setError(e.message);
        setInitialPath('/');
      },
    );
  }, [file, askedPath]);

  if (!file) {
    return (
      <section>
        <h1>Viewer</h1>
        <p>Open an HDF5 or NeXus file from <a href={href('files')}>Files</a> to look inside it.</p>
      </section>
    );
  }
  return (
    <section className="viewer-area">
      <h1>Viewer</h1>
      <p className="filename">{file}</p>
      {error && <p className="error" role="alert">{error}</p>}
      {initialPath !== undefined && !error && (
        <div className="h5web" data-testid="h5web" style={{ height: "calc(100vh - 11rem)", minHeight: 480 }}>
          <Suspense fallback={<p>Loading the viewer…</p>}>
            <H5WebViewer file={file} initialPath={initialPath} />
          </Suspense>
        </div>
      )}
    </section>
  );
}
