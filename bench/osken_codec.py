"""os-ken's OpenFlow 1.3 parser on the same bytes as bench/codec.ts (run by it, under /usr/bin/python3).

stdin:  {"seconds": S, "rounds": N, "cases": [{"name": ..., "messages": [hex, ...]}]}
stdout: {name: {"decode": msgs_per_s, "encode": msgs_per_s or null}}; best of N rounds.
Only FLOW_MOD is encoded: os-ken has no serializer for messages a switch sends.
"""
import json
import sys
import time

from os_ken.ofproto import ofproto_parser, ofproto_v1_3, ofproto_v1_3_parser


class Datapath:
    """The two attributes os-ken's parsers and serializers read from a datapath."""
    ofproto = ofproto_v1_3
    ofproto_parser = ofproto_v1_3_parser


DP = Datapath()
BATCH = 200


def decode(buf):
    version, msg_type, msg_len, xid = ofproto_parser.header(buf)
    msg = ofproto_parser.msg(DP, version, msg_type, msg_len, xid, buf)
    if msg is None:
        raise ValueError('os-ken could not parse ' + buf.hex())
    return msg


def encode(msg):
    msg.serialize()
    return msg.buf


def rate(fn, items, seconds):
    """messages per second, calling fn on items round-robin for about `seconds`"""
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for i in range(BATCH):
            fn(items[(done + i) % len(items)])
        done += BATCH
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - start)


def best(fn, items, seconds, rounds):
    return max(rate(fn, items, seconds) for _ in range(rounds))


def main():
    req = json.load(sys.stdin)
    out = {}
    for case in req['cases']:
        bufs = [bytes.fromhex(h) for h in case['messages']]
        msgs = [decode(b) for b in bufs]
        encodable = all(m.msg_type == ofproto_v1_3.OFPT_FLOW_MOD for m in msgs)
        out[case['name']] = {
            'decode': best(decode, bufs, req['seconds'], req['rounds']),
            'encode': best(encode, msgs, req['seconds'], req['rounds']) if encodable else None,
        }
    json.dump(out, sys.stdout)


if __name__ == '__main__':
    main()
