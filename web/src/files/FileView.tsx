// A text file or log read in the page (its last MiB: a log grows at its end), or a TIFF's preview.
import { useEffect, useState } from 'react';
import { FileText } from '../api';
import { describe } from '../messages';
import { TIFF, downloadUrl, formatSize, previewUrl, readText } from './client';

export function FileView({ root, path, version, onClose }: { root: string; path: string; version: number; onClose: () => void }) {
  const [text, setText] = useState<FileText | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [again, setAgain] = useState(0);
  const name = path.split('/').pop() ?? path;
  const image = TIFF.test(name);

  useEffect(() => {
    setError(null);
    if (image) return;
    readText(root, path).then(setText, (e) => { setText(null); setError(describe(e)); });
  }, [root, path, image, version, again]);

  return (
    <section className="file-view" aria-label={`Contents of ${name}`}>
      <div className="file-view-head">
        <strong className="filename">{name}</strong>
        {text && <span> {formatSize(text.size)}{text.truncated ? ' (showing the end)' : ''}</span>}
        {!image && <button type="button" onClick={() => setAgain((n) => n + 1)}>Reload</button>}
        <a href={downloadUrl(root, path)} download={name}>Download</a>
        <button type="button" onClick={onClose}>Close</button>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      {image
        ? <img className="tiff-preview" src={previewUrl(root, path, version)} alt={`Preview of ${name}`}
               onError={() => setError(`${name} could not be shown as an image.`)} />
        : text && <pre className="file-text" data-testid="file-text">{text.text}</pre>}
    </section>
  );
}
