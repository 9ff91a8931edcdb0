#!/usr/bin/env node
// `npm start`: runs Node-RED on 127.0.0.1 with this package installed, plus an
// MQTT broker on 127.0.0.1:1883 unless one is already listening there.
'use strict';

const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { spawn } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..');
const USER_DIR = path.join(ROOT, '.node-red-user');
const RED_JS = path.join(ROOT, 'node_modules', 'node-red', 'red.js');
const HOST = '127.0.0.1';
const MQTT_PORT = 1883;
const KILL_DELAY_MS = 5000;

const SETTINGS = `// Settings for the Node-RED that \`npm start\` runs (scripts/start.js).
// Written once; edit freely, or delete it to get these defaults back.
module.exports = {
    uiHost: ${JSON.stringify(HOST)},
    uiPort: 1880,
    flowFile: "flows.json",
    flowFilePretty: true,
    // Credentials stay unencrypted in flows_cred.json: this instance is local.
    credentialSecret: false,
    telemetry: { enabled: false }
};
`;

function log(message) {
    console.log(`[start] ${message}`);
}

function fail(message) {
    console.error(`[start] ${message}`);
    process.exit(1);
}

// A link, not a copy, so the editor and runtime see the working tree (or the
// installed dev dependency), recorded in the user directory's package.json.
function linkPackage(name, dir) {
    const userPkgFile = path.join(USER_DIR, 'package.json');
    let userPkg = { name: 'node-red-project', description: 'Node-RED user directory for npm start', version: '0.0.1', private: true };
    if (fs.existsSync(userPkgFile)) {
        userPkg = JSON.parse(fs.readFileSync(userPkgFile, 'utf8'));
    }
    const spec = 'file:' + path.relative(USER_DIR, dir);
    const dependencies = { ...userPkg.dependencies };
    if (dependencies[name] !== spec) {
        dependencies[name] = spec;
        userPkg.dependencies = dependencies;
        fs.writeFileSync(userPkgFile, JSON.stringify(userPkg, null, 4) + '\n');
    }

    const link = path.join(USER_DIR, 'node_modules', ...name.split('/'));
    const target = path.relative(path.dirname(link), dir);
    fs.mkdirSync(path.dirname(link), { recursive: true });
    let stat = null;
    try {
        stat = fs.lstatSync(link);
    } catch (err) {
        if (err.code !== 'ENOENT') throw err;
    }
    if (stat && !stat.isSymbolicLink()) {
        fail(`${link} exists and is not a symbolic link; remove it and run again`);
    }
    if (stat && fs.readlinkSync(link) !== target) {
        fs.unlinkSync(link);
        stat = null;
    }
    if (!stat) {
        fs.symlinkSync(target, link, 'dir');
    }
}

function prepareUserDir() {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    fs.mkdirSync(USER_DIR, { recursive: true });
    linkPackage(pkg.name, ROOT);
    // The example flows' dashboards: the dashboard is a dev dependency, so a
    // clone that ran npm install has it and the examples import whole.
    const dashboard = path.join(ROOT, 'node_modules', '@flowfuse', 'node-red-dashboard');
    if (fs.existsSync(path.join(dashboard, 'package.json'))) {
        linkPackage('@flowfuse/node-red-dashboard', dashboard);
    }

    const settingsFile = path.join(USER_DIR, 'settings.js');
    if (!fs.existsSync(settingsFile)) {
        fs.writeFileSync(settingsFile, SETTINGS);
    }
    return require(settingsFile);
}

function isListening(host, port) {
    return new Promise((resolve) => {
        const socket = net.connect({ host, port });
        socket.setTimeout(1000);
        socket.once('connect', () => {
            socket.destroy();
            resolve(true);
        });
        socket.once('timeout', () => {
            socket.destroy();
            resolve(false);
        });
        socket.once('error', () => resolve(false));
    });
}

async function startBroker() {
    if (await isListening(HOST, MQTT_PORT)) {
        log(`MQTT broker: mqtt://${HOST}:${MQTT_PORT} (already running, not starting another)`);
        return null;
    }
    let aedes;
    try {
        // aedes is an ES module; import() loads it on every Node.js 20 release.
        const { Aedes } = await import('aedes');
        aedes = await Aedes.createBroker();
    } catch (err) {
        log(`MQTT broker not started: ${err.message}`);
        return null;
    }
    const server = net.createServer(aedes.handle);
    try {
        await new Promise((resolve, reject) => {
            server.once('error', reject);
            server.listen(MQTT_PORT, HOST, () => {
                server.off('error', reject);
                resolve();
            });
        });
    } catch (err) {
        await new Promise((resolve) => aedes.close(resolve));
        log(`MQTT broker not started: ${err.message}`);
        return null;
    }
    log(`MQTT broker: mqtt://${HOST}:${MQTT_PORT} (embedded)`);
    return { aedes, server };
}

function stopBroker(broker) {
    if (!broker) return Promise.resolve();
    return new Promise((resolve) => {
        broker.aedes.close(() => broker.server.close(() => resolve()));
        // A client that never answers must not keep us running.
        setTimeout(resolve, 2000).unref();
    });
}

async function main() {
    if (!fs.existsSync(RED_JS)) {
        fail(`${path.relative(ROOT, RED_JS)} not found; run npm install first`);
    }
    const settings = prepareUserDir();
    const broker = await startBroker();

    const child = spawn(process.execPath, [RED_JS, '-u', USER_DIR], { cwd: ROOT, stdio: 'inherit' });
    const host = settings.uiHost || HOST;
    const port = settings.uiPort || 1880;
    log(`Node-RED editor: http://${host}:${port}/ (user directory ${path.relative(ROOT, USER_DIR)}/)`);
    log('press Ctrl-C to stop');

    let stopping = false;
    let killTimer = null;
    let exiting = false;

    async function exit(code) {
        if (exiting) return;
        exiting = true;
        clearTimeout(killTimer);
        await stopBroker(broker);
        process.exit(code);
    }

    function childRunning() {
        return child.exitCode === null && child.signalCode === null;
    }

    function stop(signal) {
        if (stopping) {
            // A second Ctrl-C: do not wait any longer.
            if (childRunning()) child.kill('SIGKILL');
            return;
        }
        stopping = true;
        log(`${signal}: stopping Node-RED`);
        if (!childRunning()) {
            exit(0);
            return;
        }
        child.kill('SIGTERM');
        killTimer = setTimeout(() => {
            if (childRunning()) {
                log(`Node-RED still running after ${KILL_DELAY_MS / 1000} s, killing it`);
                child.kill('SIGKILL');
            }
        }, KILL_DELAY_MS);
    }

    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
        process.on(signal, () => stop(signal));
    }

    child.on('error', (err) => {
        console.error(`[start] cannot run Node-RED: ${err.message}`);
        exit(1);
    });
    child.on('exit', (code, signal) => {
        if (stopping) {
            exit(0);
            return;
        }
        console.error(`[start] Node-RED exited (${signal || `code ${code}`})`);
        exit(code === null ? 1 : code);
    });
}

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
