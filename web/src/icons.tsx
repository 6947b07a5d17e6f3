// Small inline icons, so the file list looks the same on machines without an emoji font.
const PATHS = {
  folder: 'M1.5 3.5h4l1.5 1.5h7.5v8.5h-13z',
  file: 'M3.5 1.5h6l3 3v10h-9z M9.5 1.5v3h3',
  dataset: 'M2 4c0-1.5 12-1.5 12 0v8c0 1.5-12 1.5-12 0z M2 4c0 1.5 12 1.5 12 0 M2 8c0 1.5 12 1.5 12 0',
};

export function Icon({ kind }: { kind: keyof typeof PATHS }) {
  return (
    <svg className={`icon icon-${kind}`} width="16" height="16" viewBox="0 0 16 16" aria-hidden="true">
      <path d={PATHS[kind]} fill="none" stroke="currentColor" strokeWidth="1.3" strokeLinejoin="round" />
    </svg>
  );
}
