// The Files area's calls (api/hebi_api/files.py); paths are <root>/<path in root> where one is named whole.
import { deleteJson, FileText, getJson, Listing, postJson, query, Trash } from '../api';

export const join = (folder: string, name: string) => (folder ? `${folder}/${name}` : name);
export const ref = (root: string, path: string) => (path ? `${root}/${path}` : root);
/** A <root>/<path> name as [root, path]: the inverse of `ref`. */
export const splitRef = (name: string): [string, string] => {
  const slash = name.indexOf('/');
  return slash < 0 ? [name, ''] : [name.slice(0, slash), name.slice(slash + 1)];
};

export const listFolder = (root: string, path: string) => getJson<Listing>(`/api/files?${query({ root, path })}`);
export const makeFolder = (root: string, path: string) => postJson<{ path: string }>('/api/files/folder', { path: ref(root, path) });
export const moveItem = (from: string, to: string) => postJson<{ path: string }>('/api/files/move', { from, to });
export const copyItem = (from: string, to: string) => postJson<{ path: string }>('/api/files/copy', { from, to });
export const trashItem = (root: string, path: string) =>
  deleteJson<{ trashed: string; id: string }>(`/api/files?${query({ root, path })}`);
export const listTrash = () => getJson<Trash>('/api/files/trash');
export const restoreItem = (id: string) => postJson<{ path: string }>('/api/files/trash/restore', { id });
export const emptyTrash = () => deleteJson<{ removed: number }>('/api/files/trash');
export const readText = (root: string, path: string) => getJson<FileText>(`/api/files/text?${query({ root, path })}`);

export const downloadUrl = (root: string, path: string) => `/api/files/content?${query({ root, path })}`;
export const zipUrl = (root: string, path: string) => `/api/files/zip?${query({ root, path })}`;
export const previewUrl = (root: string, path: string, version: number) =>
  `/api/files/preview?${query({ root, path, v: version })}`;

export const TEXT = /\.(log|txt|out|err|json|ya?ml|cfg|ini|conf|csv|tsv|md|py|sh|xml|html?)$|^(user\.log|stdout|stderr|README)$/i;
export const TIFF = /\.tiff?$/i;
export const HDF5 = /\.(nxs|h5|hdf5?|hdf)$/i;

export function formatSize(size: number | null | undefined): string {
  if (size === null || size === undefined) return '';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}
