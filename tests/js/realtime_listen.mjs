// Subscribe to postgres_changes on one table with the real supabase-js client and print what arrives.
//
// usage: node realtime_listen.mjs <supabase_url> <key> <table> [vsn]
// Prints one JSON object per line on stdout: {"kind":"status"|"system"|"change", ...}. Exits when stdin closes.
// Node 20 has no global WebSocket, so the `ws` package is passed as the transport (Node 22+ would not need it).
import { createClient } from '@supabase/supabase-js'
import WebSocket from 'ws'

const [url, key, table, vsn] = process.argv.slice(2)
if (!url || !key || !table) {
  console.error('usage: node realtime_listen.mjs <supabase_url> <key> <table> [vsn]')
  process.exit(2)
}

const realtime = { transport: WebSocket, heartbeatIntervalMs: 5000 }
if (vsn) realtime.vsn = vsn
const client = createClient(url, key, {
  realtime,
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
})

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

client
  .channel(`js-${table}`)
  .on('postgres_changes', { event: '*', schema: 'public', table }, (payload) => out({ kind: 'change', ...payload }))
  .on('system', {}, (payload) => out({ kind: 'system', ...payload }))
  .subscribe((status, err) => out({ kind: 'status', status, error: err ? String(err.message ?? err) : null }))

process.stdin.on('end', async () => {
  await client.removeAllChannels()
  process.exit(0)
})
process.stdin.resume()
