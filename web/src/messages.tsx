// One message at a time per area: a new one replaces the old (they never pile up), and errors are said
// in the user's words, not the protocol's.
import { useCallback, useState } from 'react';
import { ApiError } from './api';

export interface Message {
  kind: 'error' | 'info';
  text: string;
}

/** What to tell the user about a failed call. The API's own messages already speak of files, lists and
 *  jobs; only what comes from below it (the network, a stopped service, a lost login) is translated. */
export function describe(error: unknown, doing?: string): string {
  const prefix = doing ? `${doing}: ` : '';
  if (error instanceof ApiError) {
    if (error.status === 0 || error.status === 401) return error.message;
    if (error.status === 502 || error.status === 504) {
      return `${prefix}a part of your session stopped answering; hebi restarts it. Try again in a moment.`;
    }
    if (error.status === 413 && !error.message) return `${prefix}that is too large.`;
    return prefix + error.message;
  }
  return prefix + ((error as Error)?.message ?? String(error));
}

export function useMessage() {
  const [message, setMessage] = useState<Message | null>(null);
  const info = useCallback((text: string) => setMessage({ kind: 'info', text }), []);
  const fail = useCallback((error: unknown, doing?: string) => setMessage({ kind: 'error', text: describe(error, doing) }), []);
  const clear = useCallback(() => setMessage(null), []);
  return { message, info, fail, clear };
}

export function MessageLine({ message, onClose }: { message: Message | null; onClose: () => void }) {
  if (!message) return null;
  return (
    <p className={`message ${message.kind === 'error' ? 'error' : 'info'}`} role={message.kind === 'error' ? 'alert' : 'status'}
       data-testid="message">
      <span>{message.text}</span>
      <button type="button" className="message-close" aria-label="Dismiss" onClick={onClose}>×</button>
    </p>
  );
}
