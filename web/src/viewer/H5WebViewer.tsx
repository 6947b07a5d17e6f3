// h5web's App over the dataserver, in its own chunk: the rest of the web app loads without it.
import { App, H5GroveProvider } from '@h5web/app';
import '@h5web/app/styles.css';
import { useEffect } from 'react';
import { href } from '../route';
import { dataFetcher, dataserverUrl, watchDatasets } from './dataFetcher';

export default function H5WebViewer({ file, initialPath }: { file: string; initialPath: string }) {
  // The dataset in view goes into the address (h5web reports no selection, but it reads what it shows).
  useEffect(() => {
    watchDatasets((path) => window.history.replaceState(null, '', href('viewer', { file, path })));
    return () => watchDatasets(null);
  }, [file]);
  return (
    <H5GroveProvider url={dataserverUrl()} filepath={file} fetcher={dataFetcher} resetKeys={[file]}>
      <App key={`${file}:${initialPath}`} initialPath={initialPath} sidebarOpen />
    </H5GroveProvider>
  );
}
