// savu_config's prompt beside the buttons: the same commands, typed (`mod 4.1 86`, `rem 3`, `undo`),
// with their answers printed below as savu_config prints them. Up and down recall earlier lines.
import { FormEvent, useEffect, useRef, useState } from 'react';
import { CommandAnswer, valueText } from './client';
import { resultText } from './format';

export interface LineOutcome { answer?: CommandAnswer; error?: string }

interface Said { line: string; text: string; ok: boolean }

export function answerText(answer: CommandAnswer): string {
  if (answer.help) return answer.help.map((h) => `${h.syntax.padEnd(44)} ${h.does}`).join('\n');
  if (answer.history) {
    return answer.history.entries.map((e) => `${String(e.number).padStart(3)}  ${e.command}${e.current ? '   <- now' : ''}`).join('\n');
  }
  if (answer.plugin) {
    const p = answer.plugin;
    return [`${p.name} (${p.kind}, ${p.category})`, p.summary, '',
      ...p.parameters.filter((q) => q.visibility !== 'hidden').map((q) => `  ${String(q.number ?? '').padStart(3)}) ${q.name} = ${valueText(q.default)}  ${q.description ?? ''}`),
      ...(p.citations.length ? ['', 'Citations:', ...p.citations.map((c) => `  ${c.description || c.doi || ''}`)] : [])].join('\n');
  }
  return (answer.results ?? []).map((r) => resultText(r)).filter(Boolean).join('\n') || 'Done.';
}

export default function CommandLine({ onLine, onAnswer }: {
  onLine: (line: string) => Promise<LineOutcome>; onAnswer: (answer: CommandAnswer) => void;
}) {
  const [line, setLine] = useState('');
  const [said, setSaid] = useState<Said[]>([]);
  const [recall, setRecall] = useState(-1);
  const [busy, setBusy] = useState(false);
  const out = useRef<HTMLPreElement>(null);
  useEffect(() => { out.current?.scrollTo(0, out.current.scrollHeight); }, [said]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const text = line.trim();
    if (!text || busy) return;
    setBusy(true);
    const outcome = await onLine(text);
    setBusy(false);
    setRecall(-1);
    if (outcome.answer) {
      onAnswer(outcome.answer);
      setSaid((s) => [...s, { line: text, text: answerText(outcome.answer as CommandAnswer), ok: true }]);
      setLine('');
    } else {
      setSaid((s) => [...s, { line: text, text: outcome.error ?? 'Not done.', ok: false }]);
    }
  };
  const lines = said.map((s) => s.line);
  const move = (step: number) => {
    if (!lines.length) return;
    const next = recall < 0 ? (step < 0 ? lines.length - 1 : -1) : recall + step;
    if (next < 0 || next >= lines.length) { setRecall(-1); setLine(''); return; }
    setRecall(next);
    setLine(lines[next]);
  };

  return (
    <div className="pl-card pl-console">
      <h2>Command line</h2>
      <p className="desc">savu_config's commands: <code>mod 4.1 86</code>, <code>mod -g ratio 2</code>, <code>add MedianFilter 3</code>,
        <code>rem 3</code>, <code>disp -v</code>, <code>expand 4</code>, <code>undo</code>… Type <code>help</code> for all of them.</p>
      <pre ref={out} className="pl-transcript" data-testid="console" aria-live="polite">
        {said.map((s, i) => (
          <span key={i} className={s.ok ? '' : 'error'}>{`>>> ${s.line}\n${s.text}\n`}</span>
        ))}
      </pre>
      <form onSubmit={(e) => void submit(e)} className="pl-prompt">
        <span aria-hidden="true">&gt;&gt;&gt;</span>
        <input type="text" value={line} aria-label="savu_config command" placeholder="e.g. mod 4.1 86" autoComplete="off" spellCheck={false}
               onChange={(e) => setLine(e.target.value)}
               onKeyDown={(e) => {
                 if (e.key === 'ArrowUp') { e.preventDefault(); move(-1); }
                 if (e.key === 'ArrowDown') { e.preventDefault(); move(1); }
               }} />
        <button type="submit" disabled={busy}>Run</button>
      </form>
    </div>
  );
}
