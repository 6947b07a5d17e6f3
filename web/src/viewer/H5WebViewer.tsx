// h5web's App over the dataserver, in its own chunk: the rest of the web app loads without it.
import { App, H5GroveProvider } from '@h5web/app';
import '@h5web/app/styles.css';
import { dataFetcher, dataserverUrl } from './dataFetcher';

export default function H5WebViewer({ file, initialPath }: { file: string; initialPath: string }) {
  return (
    <H5GroveProvider url={dataserverUrl()} filepath={file} fetcher={dataFetcher} resetKeys={[file]}>
      <App key={`${file}:${initialPath}`} initialPath={initialPath} sidebarOpen />
    </H5GroveProvider>
  );
}
