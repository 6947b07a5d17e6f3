// The Viewer area: h5web (the field's HDF5 viewer) over the session's dataserver, which speaks
// h5grove's API under /data/. The file opens on its NeXus default plot, found by the dataserver by
// following `default` attributes (never assuming /entry), or on the path named in the address.
// Two views of the same file: Explore (h5web: the tree, every kind of dataset) and Image tools (slices
// binned to the canvas, histogram, profile, ROI, comparison: viewer/ImageTools), chosen by `view=tools`.
import { lazy, Suspense, useEffect, useState } from 'react';
import { getJson } from '../api';
import { href } from '../route';

const H5WebViewer = lazy(() => import('../viewer/H5WebViewer'));
const ImageTools = lazy(() => import('../viewer/ImageTools'));

interface DefaultPlot {
  found: boolean;
  nxdata?: string | null;
  signal?: string | null;
}

/** The other view of the dataset in view now (each view keeps it in the address as it goes). */
function switchView(file: string, tools: boolean): string {
  const now = new URLSearchParams(window.location.hash.split('?')[1] ?? '');
  const path = now.get('path');
  return href('viewer', { file, ...(path ? { path } : {}), ...(tools ? { view: 'tools' } : {}) });
}

export default function ViewerArea({ params }: { params: URLSearchParams }) {
  const file = params.get('file');
  const askedPath = params.get('path');
  const tools = params.get('view') === 'tools';
  // undefined while the default plot is being looked up; then a path, or '/' when there is none.
  const [initialPath, setInitialPath] = useState<string | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    setError(null);
    setInitialPath(undefined);
    if (!file || tools) return;
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
  }, [file, askedPath, tools]);

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
      <nav className="viewer-tabs" aria-label="Views">
        <a href={href('viewer', { file, ...(askedPath ? { path: askedPath } : {}) })} aria-current={tools ? undefined : 'page'}
           onClick={(e) => { e.preventDefault(); window.location.hash = switchView(file, false); }}>Explore</a>
        <a href={href('viewer', { file, ...(askedPath ? { path: askedPath } : {}), view: 'tools' })} aria-current={tools ? 'page' : undefined}
           onClick={(e) => { e.preventDefault(); window.location.hash = switchView(file, true); }}>Image tools</a>
      </nav>
      {tools && (
        <Suspense fallback={<p>Loading the image tools…</p>}>
          <ImageTools key={file} file={file} params={params} />
        </Suspense>
      )}
      {!tools && error && <p className="error" role="alert">{error}</p>}
      {!tools && initialPath !== undefined && !error && (
        <div className="h5web" data-testid="h5web" style={{ height: "calc(100vh - 11rem)", minHeight: 480 }}>
          <Suspense fallback={<p>Loading the viewer…</p>}>
            <H5WebViewer file={file} initialPath={initialPath} />
          </Suspense>
        </div>
      )}
    </section>
  );
}
