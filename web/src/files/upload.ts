// Uploads by the tus protocol (tus-js-client against /api/tus, api/hebi_api/tus.py): each file goes in
// pieces, and a cut connection costs only the piece in flight; the client asks the server where it got
// to and goes on from there, by itself (retries) or when the user presses Resume.
import * as tus from 'tus-js-client';
import { toLogin } from '../api';

export const CHUNK_BYTES = 8 * 1024 * 1024;

export interface UploadItem {
  key: string;
  name: string;          // the path below the target folder: "scan.tif", or "run/scan.tif" from a folder
  size: number;
  sent: number;
  state: 'waiting' | 'sending' | 'paused' | 'done' | 'failed' | 'exists';
  error?: string;
}

/** A file picked by the user with the path it keeps below the target folder. */
export interface Picked {
  file: File;
  name: string;
}

export class Uploader {
  private uploads = new Map<string, tus.Upload>();
  private sources = new Map<string, { file: File; root: string; folder: string; name: string }>();
  items: UploadItem[] = [];

  private listeners = new Set<{ onChange: (items: UploadItem[]) => void; onDone: () => void }>();

  /** Follow the uploads (the Files area while it is shown); returns the unsubscribe. */
  subscribe(onChange: (items: UploadItem[]) => void, onDone: () => void): () => void {
    const listener = { onChange, onDone };
    this.listeners.add(listener);
    onChange(this.items);
    return () => { this.listeners.delete(listener); };
  }

  private onChange(items: UploadItem[]) {
    this.listeners.forEach((l) => l.onChange(items));
  }

  private onDone() {
    this.listeners.forEach((l) => l.onDone());
  }

  private update(key: string, change: Partial<UploadItem>) {
    this.items = this.items.map((item) => (item.key === key ? { ...item, ...change } : item));
    this.onChange(this.items);
  }

  add(picked: Picked[], root: string, folder: string) {
    for (const { file, name } of picked) {
      const key = `${root}/${folder}/${name}/${Date.now()}/${Math.random()}`;
      this.items = [...this.items, { key, name, size: file.size, sent: 0, state: 'waiting' }];
      this.sources.set(key, { file, root, folder, name });
      this.uploads.set(key, this.make(key, false));
    }
    this.onChange(this.items);
    this.next();
  }

  private make(key: string, overwrite: boolean): tus.Upload {
    const { file, root, folder, name } = this.sources.get(key)!;
    return new tus.Upload(file, {
      endpoint: '/api/tus',
      chunkSize: CHUNK_BYTES,
      retryDelays: [500, 2000, 5000],
      metadata: { root, folder, name, overwrite: overwrite ? '1' : '0' },
      // Remembered in the browser (localStorage) until the file is whole: the same file picked again
      // for the same place, after a reload or a crash, goes on from where the server got to.
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onProgress: (sent) => this.update(key, { sent, state: 'sending' }),
      onSuccess: () => {
        this.update(key, { sent: file.size, state: 'done' });
        this.uploads.delete(key);
        this.sources.delete(key);
        this.onDone();
        this.next();
      },
      onShouldRetry: (error) => {
        const status = (error as tus.DetailedError).originalResponse?.getStatus() ?? 0;
        return status === 0 || status >= 500 || status === 423;  // the network or a restarting session
      },
      onError: (error) => {
        const response = (error as tus.DetailedError).originalResponse;
        const status = response?.getStatus() ?? 0;
        if (status === 401) toLogin();
        let message = 'the connection was lost: press Resume to go on from where it stopped';
        try {
          const body = JSON.parse(response?.getBody() ?? '') as { error?: string };
          if (body.error) message = body.error;
        } catch {
          /* not the API's JSON: the network's failure */
        }
        this.update(key, { state: status === 409 && message.includes('already exists') ? 'exists' : 'failed', error: message });
        this.next();
      },
    });
  }

  /** One file at a time: the session's disk and the user's line are shared by all of them. */
  private next() {
    if (this.items.some((item) => item.state === 'sending')) return;
    const waiting = this.items.find((item) => item.state === 'waiting');
    if (!waiting) return;
    this.update(waiting.key, { state: 'sending' });
    const upload = this.uploads.get(waiting.key);
    const source = this.sources.get(waiting.key);
    if (!upload || !source) return;
    void upload.findPreviousUploads().then((previous) => {
      const same = previous.find((p) => p.metadata.root === source.root && p.metadata.folder === source.folder
                                        && p.metadata.name === source.name);
      if (same && !upload.url) upload.resumeFromPreviousUpload(same);
      upload.start();
    }, () => upload.start());
  }

  pause(key: string) {
    void this.uploads.get(key)?.abort();
    this.update(key, { state: 'paused' });
    this.next();
  }

  resume(key: string) {
    this.update(key, { state: 'waiting', error: undefined });
    this.next();
  }

  /** Send again, replacing the file of that name which is already there. */
  replace(key: string) {
    if (!this.sources.has(key)) return;
    this.uploads.set(key, this.make(key, true));
    this.resume(key);
  }

  cancel(key: string) {
    void this.uploads.get(key)?.abort(true);  // true: tus termination, the server drops what arrived
    this.uploads.delete(key);
    this.sources.delete(key);
    this.items = this.items.filter((item) => item.key !== key);
    this.onChange(this.items);
    this.next();
  }

  clearFinished() {
    this.items = this.items.filter((item) => item.state !== 'done');
    this.onChange(this.items);
  }
}

/** Files (folders included, with their paths) from a drop: the entries API walks dropped folders. */
export async function droppedFiles(transfer: DataTransfer): Promise<Picked[]> {
  const entries = [...transfer.items].map((item) => item.webkitGetAsEntry?.()).filter(Boolean) as FileSystemEntry[];
  if (!entries.length) return [...transfer.files].map((file) => ({ file, name: file.name }));
  const found: Picked[] = [];
  async function walk(entry: FileSystemEntry, prefix: string): Promise<void> {
    if (entry.isFile) {
      const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
      found.push({ file, name: prefix + entry.name });
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      for (;;) {  // readEntries answers in batches until it answers none
        const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
      }
    }
  }
  for (const entry of entries) await walk(entry, '');
  return found;
}

/** Files from an <input type=file>, with the folder paths a folder input gives them. */
export function pickedFiles(list: FileList | null): Picked[] {
  return [...(list ?? [])].map((file) => ({ file, name: file.webkitRelativePath || file.name }));
}

/** The app's one uploader: uploads go on while the user is in another area, and are shown on return. */
export const uploader = new Uploader();
