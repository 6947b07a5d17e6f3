// Admin (#/admin): every user's session, with a stop button, and the local accounts. Shown only to an
// admin (the gateway's /gateway/api/me says who is one); the gateway refuses the calls to anyone else.
import { useCallback, useEffect, useState } from 'react';
import { deleteJson, getJson } from '../api';
import { describe } from '../messages';

export interface GatewayMe {
  user: string;
  admin: boolean;
  scopes: string[];
}

interface AdminSession {
  user: string;
  state: string;
  started_at: number | null;
  last_activity: number | null;
  detail: string;
}

interface AdminUser {
  name: string;
  uid: number | null;
  groups: string[];
  admin: boolean;
  session: string;
}

function when(seconds: number | null): string {
  return seconds ? new Date(seconds * 1000).toLocaleString() : '—';
}

export default function AdminArea() {
  const [sessions, setSessions] = useState<AdminSession[] | null>(null);
  const [users, setUsers] = useState<AdminUser[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [stopping, setStopping] = useState<string | null>(null);

  const load = useCallback(() => {
    getJson<{ sessions: AdminSession[] }>('/gateway/api/sessions').then((s) => setSessions(s.sessions), (e) => setError(describe(e)));
    getJson<{ users: AdminUser[] }>('/gateway/api/users').then((u) => setUsers(u.users), (e) => setError(describe(e)));
  }, []);
  useEffect(load, [load]);

  const stop = (user: string) => {
    if (!window.confirm(`Stop ${user}'s session? Their jobs go on; unsaved edits in their browser are lost.`)) return;
    setStopping(user);
    deleteJson(`/gateway/api/sessions/${encodeURIComponent(user)}`)
      .then(() => setError(null), (e) => setError(describe(e)))
      .finally(() => { setStopping(null); load(); });
  };

  return (
    <section className="admin" aria-label="Admin">
      <h2>Sessions</h2>
      {error && <p className="error" role="alert">{error}</p>}
      {sessions && sessions.length === 0 && <p>No sessions.</p>}
      {sessions && sessions.length > 0 && (
        <table data-testid="admin-sessions">
          <thead><tr><th>User</th><th>State</th><th>Started</th><th>Last activity</th><th /></tr></thead>
          <tbody>
            {sessions.map((s) => (
              <tr key={s.user} data-user={s.user}>
                <td>{s.user}</td>
                <td title={s.detail}>{s.state}</td>
                <td>{when(s.started_at)}</td>
                <td>{when(s.last_activity)}</td>
                <td>
                  <button type="button" onClick={() => stop(s.user)} disabled={stopping === s.user}>
                    {stopping === s.user ? 'Stopping…' : 'Stop'}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Local accounts</h2>
      {users && users.length === 0 && <p>No local accounts (users log in through the facility).</p>}
      {users && users.length > 0 && (
        <table data-testid="admin-users">
          <thead><tr><th>User</th><th>uid</th><th>Groups</th><th>Role</th><th>Session</th></tr></thead>
          <tbody>
            {users.map((u) => (
              <tr key={u.name} data-user={u.name}>
                <td>{u.name}</td>
                <td>{u.uid ?? '—'}</td>
                <td>{u.groups.join(', ')}</td>
                <td>{u.admin ? 'admin' : 'user'}</td>
                <td>{u.session}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
