// A whole scheduling flow with the official Node client, pokitdok-nodejs 0.0.11, against a sandbox.
//
//     node flow.js '<json config>'
//
// config: {
//   "client": path of the client's index.js copy whose `baseUrl` line points at `proxy_port`,
//   "proxy_port": the loopback port that copy talks to,
//   "upstream": the sandbox's origin, e.g. "http://127.0.0.1:8123",
//   "client_id", "client_secret": credentials of the flow's tenant,
//   "demo_client_id": an existing client id, asked for a token with a wrong secret,
//   "doc": the documentation's records the flow uses (provider, patient, offices, uuids)
// }
//
// The client is required as it is: only its `baseUrl` line differs from the npm package (the
// caller rewrites that line in a copy; `require('request')` and `require('lodash')` resolve
// through NODE_PATH to the installed package's dependencies). Between the client and the
// sandbox sits a small proxy on `proxy_port` that forwards every request unchanged and notes its
// method, path and status, so token requests can be counted: the client answers a 401, and a
// 400 without `meta`, by fetching a new token and retrying, forever if the answer stays the same.
//
// Each step waits for the client's callback (at most STEP_TIMEOUT_MS, or until it has caused
// LOOP_TOKEN_REQUESTS token requests: a loop) and records how often it was called, with what,
// and the requests the step caused. After the last step the script
// waits GRACE_MS for late callbacks or requests, prints one JSON object on stdout and exits
// (a client stuck in a token loop would otherwise keep the process alive).

'use strict';

const http = require('http');

const STEP_TIMEOUT_MS = 5000;
const GRACE_MS = 500;
const LOOP_TOKEN_REQUESTS = 5;

const config = JSON.parse(process.argv[2]);
const doc = config.doc;
const upstream = new URL(config.upstream);

// -- the counting proxy -------------------------------------------------------------------------

const requests = [];

const proxy = http.createServer((incoming, outgoing) => {
    const entry = {method: incoming.method, path: incoming.url, status: null};
    requests.push(entry);
    const forward = http.request({
        host: upstream.hostname,
        port: upstream.port,
        method: incoming.method,
        path: incoming.url,
        headers: incoming.headers,
    }, (answer) => {
        entry.status = answer.statusCode;
        outgoing.writeHead(answer.statusCode, answer.headers);
        answer.pipe(outgoing);
    });
    forward.on('error', (error) => {
        entry.status = 502;
        entry.error = String(error);
        outgoing.writeHead(502, {'content-type': 'text/plain'});
        outgoing.end(String(error));
    });
    incoming.pipe(forward);
});

function isTokenRequest(entry) {
    return entry.method === 'POST' && entry.path.split('?')[0].endsWith('/oauth2/token');
}

// -- steps --------------------------------------------------------------------------------------

const steps = [];

// Runs `start(callback)` and resolves with its record once the client called back, or after
// STEP_TIMEOUT_MS. Callbacks arriving later still count in `calls`.
function step(name, start) {
    const record = {name, calls: 0, timed_out: false, token_loop: false, error: null, status: null, body: null,
                    requests: []};
    steps.push(record);
    const first = requests.length;
    return new Promise((resolve) => {
        const finish = () => {
            record.requests = requests.slice(first);
            resolve(record);
        };
        const timer = setTimeout(() => {
            record.timed_out = true;
            clearInterval(watch);
            finish();
        }, STEP_TIMEOUT_MS);
        // A client in a token-refresh loop never calls back: give up on it after a few rounds.
        const watch = setInterval(() => {
            if (requests.slice(first).filter(isTokenRequest).length >= LOOP_TOKEN_REQUESTS) {
                record.timed_out = true;
                record.token_loop = true;
                clearTimeout(timer);
                clearInterval(watch);
                finish();
            }
        }, 20);
        start((err, res) => {
            record.calls += 1;
            if (record.calls > 1) {
                return;
            }
            clearTimeout(timer);
            clearInterval(watch);
            if (err) {
                // The client calls back with (response body, response) on every status but 200.
                record.error = true;
                record.status = res && res.statusCode;
                record.body = err;
            } else {
                // ... and with (null, decoded body) on a 200.
                record.error = false;
                record.status = 200;
                record.body = res;
            }
            finish();
        });
    });
}

class Stop extends Error {}

function succeeded(record) {
    if (record.error !== false) {
        throw new Stop(record.name);
    }
    return record.body && record.body.data;
}

// -- the flow -----------------------------------------------------------------------------------

async function flow(pokitdok) {
    const schedulers = succeeded(await step('schedulers', (cb) => pokitdok.schedulers(cb)));
    const schedulerUuid = schedulers && schedulers[0] && schedulers[0].scheduler_uuid;
    succeeded(await step('scheduler_by_uuid', (cb) => pokitdok.schedulers({uuid: schedulerUuid}, cb)));
    succeeded(await step('appointment_types', (cb) => pokitdok.appointmentTypes(cb)));
    succeeded(await step('appointment_type_by_uuid',
        (cb) => pokitdok.appointmentTypes({uuid: doc.appointment_type_uuid}, cb)));

    const slot = succeeded(await step('create_slot', (cb) => pokitdok.createAppointmentSlot({
        pd_provider_uuid: doc.provider_uuid,
        location: doc.far_office,
        appointment_type: 'AT1',
        start_date: doc.slot_start,
        end_date: doc.slot_end,
    }, cb)));
    const slotUuid = slot.pd_appointment_uuid;

    succeeded(await step('register_patient', (cb) => pokitdok.addPatientToSystem({
        pd_patient_uuid: doc.patient_uuid,
        pd_provider_uuid: doc.provider_uuid,
        location: doc.far_office,
    }, cb)));

    // `location` as a list: the client (request + qs) sends location[0]=..&location[1]=..
    succeeded(await step('search_near', (cb) => pokitdok.appointments({
        location: doc.far_office,
        radius: '1mi',
        appointment_type: 'AT1',
    }, cb)));

    // updateAppointment(...) sends no body (it passes `options`, not `json`, to the request):
    // book through the client's generic request handler instead.
    succeeded(await step('book', (cb) => pokitdok.apiRequest({
        path: '/schedule/appointments/' + slotUuid,
        method: 'PUT',
        json: {patient: {_uuid: doc.patient_uuid}, description: 'Booked from Node'},
    }, cb)));
    succeeded(await step('get_booked', (cb) => pokitdok.appointments({uuid: slotUuid}, cb)));
    succeeded(await step('patient_appointments',
        (cb) => pokitdok.appointments({patient_uuid: doc.patient_uuid}, cb)));
    succeeded(await step('cancel', (cb) => pokitdok.deleteAppointment({uuid: slotUuid}, cb)));
    succeeded(await step('delete_slot', (cb) => pokitdok.deleteAppointmentSlot({uuid: slotUuid}, cb)));
    await step('get_deleted', (cb) => pokitdok.appointments({uuid: slotUuid}, cb));
}

// Requests the platform refuses: each must reach the caller's callback once, with no new token.
async function refusals(pokitdok) {
    // A search with neither patient_uuid, pd_provider_uuid nor location.
    await step('search_without_selector', (cb) => pokitdok.appointments({appointment_type: 'AT1'}, cb));
    // A slot that ends before it starts.
    await step('slot_ending_before_start', (cb) => pokitdok.createAppointmentSlot({
        pd_provider_uuid: doc.provider_uuid,
        location: doc.far_office,
        appointment_type: 'AT1',
        start_date: doc.slot_end,
        end_date: doc.slot_start,
    }, cb));
    // The client's own updateAppointment: its booking goes out without a body.
    await step('update_appointment_without_body', (cb) => pokitdok.updateAppointment({
        uuid: doc.open_slot,
        patient: {_uuid: doc.patient_uuid},
    }, cb));
    await step('open_slot_after_refusal', (cb) => pokitdok.appointments({uuid: doc.open_slot}, cb));
}

async function main() {
    await new Promise((resolve) => proxy.listen(config.proxy_port, '127.0.0.1', resolve));
    const PokitDok = require(config.client);
    const pokitdok = new PokitDok(config.client_id, config.client_secret);

    let stopped_at = null;
    try {
        await flow(pokitdok);
    } catch (error) {
        if (!(error instanceof Stop)) {
            throw error;
        }
        stopped_at = error.message;
    }
    await refusals(pokitdok);

    // Another connection, with a wrong secret: the 401 makes the client ask for a token, which
    // is refused; that refusal goes to the caller.
    const wrong = new PokitDok(config.demo_client_id, 'not-the-secret');
    await step('wrong_secret', (cb) => wrong.schedulers(cb));

    await new Promise((resolve) => setTimeout(resolve, GRACE_MS));
    process.stdout.write(JSON.stringify({
        base_url: config.upstream,
        stopped_at,
        steps,
        requests,
        token_requests: requests.filter(isTokenRequest).length,
    }) + '\n', () => process.exit(0));  // exit once written: stdout to a pipe is asynchronous
}

main().catch((error) => {
    process.stderr.write((error && error.stack) || String(error));
    process.stderr.write('\n');
    process.exit(2);
});
