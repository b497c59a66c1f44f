#!/usr/bin/env python3
"""esp_at_modem.py - a simulated ESP8266 AT modem for test_esp_at.sh.

    esp_at_modem.py DEVICE_BIN DEVICE_ID KEY_HEX HOST PORT EVENTS

Starts DEVICE_BIN (esp_at_device) with one end of a socket pair as its UART and speaks the AT
command set (single connection, echo on) on the other end: AT, AT+CIPSTART="TCP",... opens a
real TCP connection (to iotd), AT+CIPSEND=<n> with its "> " prompt, Recv and SEND OK, +IPD,<n>:
for what the server sends (also between the lines of a command's reply), AT+CIPCLOSE, CLOSED
when the server hangs up. To test the driver, every reply is written in pieces of 1 to 4 bytes
with a pause between them, some commands are answered `busy p...` or `busy s...` (and ignored,
as the modem does), and SIGUSR1 drops the connection with CLOSED. SIGTERM stops the device
(SIGTERM) and then the modem. Everything the modem does is logged on stderr as `modem: ...`.
"""
import os
import random
import select
import signal
import socket
import subprocess
import sys
import time

SEED = 20

class Modem:
    def __init__(self, uart):
        self.uart = uart
        self.rng = random.Random(SEED)
        self.tcp = None
        self.cmd = b""
        self.data_left = 0
        self.data = b""
        self.ncmd = 0
        self.counts = {"busy p": 0, "busy s": 0, "ipd": 0, "ipd_in_reply": 0, "closed": 0, "send": 0, "pieces": 0}

    def log(self, msg):
        print("modem: " + msg, file=sys.stderr, flush=True)

    def write_split(self, data):
        i = 0
        while i < len(data):
            n = self.rng.randint(1, 4)
            self.uart.sendall(data[i:i + n])
            self.counts["pieces"] += 1
            i += n
            time.sleep(0.0005)

    def ipd(self):
        """Pass on what the server sent, if anything, as +IPD blocks; returns how many."""
        blocks = 0
        while self.tcp is not None:
            r, _, _ = select.select([self.tcp], [], [], 0)
            if not r:
                return blocks
            try:
                chunk = self.tcp.recv(self.rng.randint(1, 300))
            except OSError:
                chunk = b""
            if not chunk:
                self.drop("the server closed")
                return blocks
            self.counts["ipd"] += 1
            blocks += 1
            self.write_split(b"\r\n+IPD,%d:" % len(chunk) + chunk)
        return blocks

    def say(self, *lines):
        """A reply, line by line, with the server's bytes allowed in between."""
        for line in lines:
            if self.ipd():
                self.counts["ipd_in_reply"] += 1  # while the device waits for its reply
            self.write_split(line)

    def drop(self, why):
        if self.tcp is not None:
            self.tcp.close()
            self.tcp = None
        self.counts["closed"] += 1
        self.log("CLOSED (%s)" % why)
        self.write_split(b"CLOSED\r\n")

    def command(self, line):
        self.ncmd += 1
        self.write_split(line + b"\r\n")  # echo (ATE1)
        # Some commands find the modem busy: it says so and ignores them.
        if self.ncmd > 1 and self.ncmd % 5 == 0:
            kind = b"busy p..." if self.ncmd % 2 else b"busy s..."
            self.counts[kind[:6].decode()] += 1
            self.log("%s for %r" % (kind.decode(), line))
            self.say(kind + b"\r\n")
            return
        if line == b"AT":
            self.say(b"\r\n", b"OK\r\n")
        elif line.startswith(b"AT+CIPSTART="):
            self.cipstart(line[len(b"AT+CIPSTART="):])
        elif line.startswith(b"AT+CIPSEND="):
            n = int(line[len(b"AT+CIPSEND="):])
            if self.tcp is None:
                self.say(b"link is not valid\r\n", b"\r\n", b"ERROR\r\n")
            elif n < 1 or n > 2048:
                self.say(b"\r\n", b"ERROR\r\n")
            else:
                self.data_left, self.data = n, b""
                self.say(b"\r\n", b"OK\r\n", b"> ")
        elif line == b"AT+CIPCLOSE":
            if self.tcp is None:
                self.say(b"\r\n", b"ERROR\r\n")
            else:
                self.tcp.close()
                self.tcp = None
                self.say(b"CLOSED\r\n", b"\r\n", b"OK\r\n")
        else:
            self.say(b"\r\n", b"ERROR\r\n")

    def cipstart(self, args):
        parts = args.split(b",")
        if len(parts) != 3 or parts[0] not in (b'"TCP"', b'"SSL"'):
            self.say(b"\r\n", b"ERROR\r\n")
            return
        if self.tcp is not None:
            self.say(b"ALREADY CONNECTED\r\n", b"\r\n", b"ERROR\r\n")
            return
        host, port = parts[1].strip(b'"').decode(), int(parts[2])
        try:
            self.tcp = socket.create_connection((host, port), timeout=5)
        except OSError as e:
            self.log("CIPSTART %s:%d failed: %s" % (host, port, e))
            self.say(b"ERROR\r\n", b"CLOSED\r\n")
            return
        self.log("CIPSTART %s:%d" % (host, port))
        self.say(b"CONNECT\r\n", b"\r\n", b"OK\r\n")

    def from_uart(self, data):
        for b in data:
            c = bytes([b])
            if self.data_left > 0:
                self.data += c
                self.data_left -= 1
                if self.data_left == 0:
                    self.counts["send"] += 1
                    self.tcp.sendall(self.data)
                    self.say(b"\r\n", b"Recv %d bytes\r\n" % len(self.data), b"\r\n",
                             b"SEND OK\r\n")
            elif c == b"\n":
                line = self.cmd.rstrip(b"\r")
                self.cmd = b""
                if line:
                    self.command(line)
            else:
                self.cmd += c
                if len(self.cmd) > 256:
                    self.cmd = b""


def main():
    if len(sys.argv) != 7:
        sys.exit("usage: esp_at_modem.py DEVICE_BIN DEVICE_ID KEY_HEX HOST PORT EVENTS")
    here, there = socket.socketpair()
    there.setblocking(False)
    dev = subprocess.Popen([sys.argv[1], str(there.fileno())] + sys.argv[2:],
                           pass_fds=[there.fileno()])
    there.close()
    modem = Modem(here)
    flags = {"drop": False, "stop": False}
    signal.signal(signal.SIGUSR1, lambda *_: flags.update(drop=True))
    signal.signal(signal.SIGTERM, lambda *_: flags.update(stop=True))
    modem.log("seed %d, device pid %d" % (SEED, dev.pid))
    # Bounded: the test kills us long before this.
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not flags["stop"] and dev.poll() is None:
        if flags["drop"]:
            flags["drop"] = False
            if modem.tcp is not None:
                modem.drop("injected")
        watch = [here] + ([modem.tcp] if modem.tcp is not None else [])
        try:
            r, _, _ = select.select(watch, [], [], 0.1)
        except InterruptedError:
            continue
        if here in r:
            data = here.recv(4096)
            if not data:
                break
            modem.from_uart(data)
        if modem.tcp is not None and modem.tcp in r and modem.data_left == 0:
            modem.ipd()
    if dev.poll() is None:
        dev.terminate()
        # Its BYE and CIPCLOSE still go through us.
        end = time.monotonic() + 5
        while dev.poll() is None and time.monotonic() < end:
            r, _, _ = select.select([here], [], [], 0.05)
            try:
                data = here.recv(4096) if r else b""
                if data:
                    modem.from_uart(data)
            except OSError:
                break  # the device exited while the modem still spoke: its business is done
        if dev.poll() is None:
            dev.kill()
    rc = dev.wait()
    modem.log("device exit %d; %s" % (rc, " ".join("%s=%d" % kv for kv in modem.counts.items())))
    sys.exit(0 if rc == 0 else 1)


if __name__ == "__main__":
    main()
