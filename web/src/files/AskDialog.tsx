// A question before a change: a name to give (new folder, rename, move, copy) or a yes/no (delete,
// empty the trash). In the page rather than window.prompt, so it looks like the app and can be read.
import { FormEvent, useEffect, useRef, useState } from 'react';

export interface Ask {
  title: string;
  text?: string;
  label?: string;        // set: the dialog asks for a value
  value?: string;
  confirm: string;
  danger?: boolean;
  onConfirm: (value: string) => void | Promise<void>;
}

export function AskDialog({ ask, onClose }: { ask: Ask; onClose: () => void }) {
  const [value, setValue] = useState(ask.value ?? '');
  const input = useRef<HTMLInputElement>(null);
  const button = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (ask.label) {
      input.current?.focus();
      const dot = (ask.value ?? '').lastIndexOf('.');
      input.current?.setSelectionRange(0, dot > 0 ? dot : (ask.value ?? '').length);
    } else {
      button.current?.focus();
    }
  }, [ask]);

  function submit(event: FormEvent) {
    event.preventDefault();
    if (ask.label && !value.trim()) return;
    onClose();
    void ask.onConfirm(value.trim());
  }

  return (
    <div className="ask-backdrop" onKeyDown={(e) => e.key === 'Escape' && onClose()}>
      <form className="ask" role="dialog" aria-modal="true" aria-label={ask.title} onSubmit={submit}>
        <h2>{ask.title}</h2>
        {ask.text && <p>{ask.text}</p>}
        {ask.label && <label>{ask.label} <input ref={input} value={value} onChange={(e) => setValue(e.target.value)} /></label>}
        <div className="ask-buttons">
          <button type="button" onClick={onClose}>Cancel</button>
          <button ref={button} type="submit" className={ask.danger ? 'danger' : 'primary'}>{ask.confirm}</button>
        </div>
      </form>
    </div>
  );
}
