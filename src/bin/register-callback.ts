// `npm run mailjet:register-callback`: points Mailjet's event callbacks (all seven types, grouped)
// at this jetpost's /events, with the EVENTS_USERNAME/EVENTS_PASSWORD basic credentials in the URL.
// Safe to run again: existing registrations are updated, not duplicated.
import { ConfigError, loadConfig } from '../config.js';
import { redactText } from '../log.js';
import { createMailjetClient } from '../mailjet/client.js';

async function run(): Promise<void> {
  const config = loadConfig();
  const publicUrl = process.argv[2] ?? config.http.publicUrl;
  if (!config.mailjet.credentials || !config.events.credentials || !publicUrl) {
    throw new ConfigError(
      'set MAILJET_API_KEY, MAILJET_API_SECRET, EVENTS_USERNAME, EVENTS_PASSWORD and PUBLIC_URL (or pass the public base URL as an argument)',
    );
  }
  const callback = new URL('/events', publicUrl);
  callback.username = encodeURIComponent(config.events.credentials.username);
  callback.password = encodeURIComponent(config.events.credentials.password);
  const mailjet = createMailjetClient({ ...config.mailjet.credentials, baseUrl: config.mailjet.baseUrl, timeoutMs: config.mailjet.timeoutMs });
  const registrations = await mailjet.registerEventCallback(callback.toString());
  for (const { eventType, action } of registrations) {
    process.stdout.write(`${eventType.padEnd(8)} ${action} → ${redactText(callback.toString())}\n`);
  }
}

run().catch((error: unknown) => {
  process.stderr.write(`register-callback failed: ${error instanceof Error ? redactText(error.message) : String(error)}\n`);
  process.exit(1);
});
