// The real OpenID Connect provider hebi's login tests sign in against: npm `oidc-provider`, on loopback.
//
//   node server.mjs <config.json>
//
// config.json: {"port": 0, "clients": [{client_id, client_secret?, redirect_uris, id_token_ttl?, tamper?}],
//               "accounts": {"alice": {"groups": [...], "posix_uid": 20001, ...}}}
// Any password logs in (the provider's development login form); an account's claims are its entry in
// "accounts" (an unknown login gets sub, name and no groups). A client with "tamper" gets id_tokens whose
// claims were changed after signing (preferred_username becomes "dora"), as an attacker on the way would.
// It prints "listening <issuer>" once ready.
import { readFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'hebi-test-rs256', alg: 'RS256', use: 'sig' };
const ttls = Object.fromEntries(config.clients.map((c) => [c.client_id, c.id_token_ttl || 3600]));
const tampered = new Set(config.clients.filter((c) => c.tamper).map((c) => c.client_id));

function basicClientId(ctx) {
  const [scheme, value] = (ctx.get('authorization') || '').split(' ');
  return scheme === 'Basic' && value ? decodeURIComponent(Buffer.from(value, 'base64').toString().split(':')[0]) : '';
}

function start(port) {
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: config.clients.map((c) => ({
      client_id: c.client_id,
      ...(c.client_secret ? { client_secret: c.client_secret, token_endpoint_auth_method: 'client_secret_basic' }
        : { token_endpoint_auth_method: 'none' }),
      redirect_uris: c.redirect_uris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
    })),
    jwks: { keys: [jwk] },
    cookies: { keys: ['hebi-test-only-cookie-key'] },
    scopes: ['openid', 'email', 'profile', 'groups', 'posix-uid'],
    claims: {
      openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'],
      groups: ['groups'], 'posix-uid': ['posix_uid', 'posix_gid'],
    },
    // Claims in the id_token too, so a login needs no userinfo call (hebi also reads userinfo when allowed).
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    ttl: {
      // A short-lived client shows that hebi ends a login when its token expires.
      IdToken: (ctx, token, client) => ttls[client.clientId],
      AccessToken: (ctx, token, client) => ttls[client.clientId],
    },
    features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
    // First-party clients: no consent page.
    async loadExistingGrant(ctx) {
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope(ctx.oidc.params.scope || 'openid');
      await grant.save();
      return grant;
    },
    async findAccount(ctx, id) {
      const extra = (config.accounts || {})[id] || {};
      return {
        accountId: id,
        async claims() {
          return { sub: id, name: id, preferred_username: id, email: `${id}@example.org`, email_verified: true, groups: [], ...extra };
        },
      };
    },
  });
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/token' && ctx.body && ctx.body.id_token && tampered.has(basicClientId(ctx))) {
      const [head, payload, signature] = ctx.body.id_token.split('.');
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
      claims.preferred_username = 'dora';
      const edited = Buffer.from(JSON.stringify(claims)).toString('base64url');
      ctx.body = { ...ctx.body, id_token: `${head}.${edited}.${signature}` };
    }
  });
  const server = provider.listen(port, '127.0.0.1');
  server.on('listening', () => console.log(`listening ${issuer}`));
}

start(config.port);
