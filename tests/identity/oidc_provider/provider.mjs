// A real OpenID Connect provider for labspace's tests: the OpenID-certified `oidc-provider`
// package on loopback. Its own interaction pages check a password (the package's development
// pages take any), so a test can type a wrong one. Configuration comes from the environment:
//   PORT            the port, on 127.0.0.1 and ::1; the issuer is http://localhost:PORT
//                   (another site than a labspace on 127.0.0.1, as a real provider is)
//   OIDC_CLIENTS    JSON list of client metadata (client_id, client_secret, redirect_uris)
//   OIDC_ACCOUNTS   a JSON file, read at each use (a test changes someone's groups):
//                   login -> {password, sub, claims: {preferred_username, groups, ...}}
//   OIDC_JWKS       JSON {keys: [private JWK]}: the signing key (the test knows it)
import { readFileSync } from 'node:fs';
import http from 'node:http';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://localhost:${port}`;
const accounts = () => JSON.parse(readFileSync(process.env.OIDC_ACCOUNTS, 'utf8'));
const bySub = (sub) => Object.values(accounts()).find((account) => account.sub === sub);

const provider = new Provider(issuer, {
  clients: JSON.parse(process.env.OIDC_CLIENTS || '[]'),
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
    posix: ['uid_number', 'gid_number'],
  },
  scopes: ['openid', 'profile', 'email', 'groups', 'posix'],
  findAccount: async (_ctx, sub) => (bySub(sub)
    ? { accountId: sub, claims: async () => ({ ...bySub(sub).claims, sub }) }
    : undefined),
  jwks: JSON.parse(process.env.OIDC_JWKS),
  features: { devInteractions: { enabled: false } },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true },
  cookies: { keys: ['labspace-test-provider-cookie-key'] },
});

const page = (uid, error = '') => `<!doctype html><title>Test IdP</title>
<h1>Test identity provider</h1>${error ? `<p id="error">${error}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
<label>User <input name="login" id="login"></label>
<label>Password <input name="password" id="password" type="password"></label>
<button type="submit" id="sign-in">Sign in</button></form>`;

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10000) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([\w-]+)(\/login)?$/);
  if (!match) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (ctx.method === 'GET') {
    ctx.type = 'html';
    ctx.body = page(details.uid);
    return undefined;
  }
  const form = await readForm(ctx.req);
  const account = accounts()[form.get('login')];
  if (!account || account.password !== form.get('password')) {
    ctx.type = 'html';
    ctx.status = 401;
    ctx.body = page(details.uid, 'wrong user or password');
    return undefined;
  }
  // Log in and consent in one step: the test user trusts the test client.
  const sub = account.sub;
  const grant = new provider.Grant({ accountId: sub, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const grantId = await grant.save();
  return provider.interactionFinished(ctx.req, ctx.res,
    { login: { accountId: sub }, consent: { grantId } }, { mergeWithLastSubmission: false });
});

for (const host of ['127.0.0.1', '::1']) {
  http.createServer(provider.callback()).listen(port, host);
}
console.log(`listening ${issuer}`);
