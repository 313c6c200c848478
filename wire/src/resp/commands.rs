//! The Redis command table: which arguments of each command are keys,
//! whether it reads or writes them, and the commands that change the
//! connection's state (`MULTI`, `EXEC`, `WATCH`, ...) rather than touch keys.

use crate::AccessKind;

/// Which arguments of a command are keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Keys {
    None,
    First,
    FirstTwo,
    All,
    /// `MSET k v k v`: every other argument.
    Pairs,
    /// `BLPOP k1 k2 timeout`.
    AllButLast,
    /// The whole keyspace (`KEYS`, `FLUSHDB`).
    Everything,
    /// `EVAL script numkeys key... arg...` (and `EVALSHA`, `FCALL`): the
    /// `numkeys` arguments after the count.
    Script,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Special {
    Plain,
    NoConflict,
    Multi,
    Exec,
    Discard,
    Watch,
    Unwatch,
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Spec {
    pub(super) kind: AccessKind,
    pub(super) keys: Keys,
    pub(super) special: Special,
}

const fn plain(kind: AccessKind, keys: Keys) -> Spec {
    Spec {
        kind,
        keys,
        special: Special::Plain,
    }
}

pub(super) const fn special(special: Special) -> Spec {
    Spec {
        kind: AccessKind::Read,
        keys: Keys::None,
        special,
    }
}

/// The command table. Names are upper case.
pub(super) fn spec_of(name: &[u8]) -> Spec {
    use AccessKind::{Read as R, Write as W};
    match name {
        b"GET" | b"STRLEN" | b"GETRANGE" | b"SUBSTR" | b"TTL" | b"PTTL" | b"EXPIRETIME"
        | b"TYPE" | b"DUMP" | b"GETBIT" | b"BITCOUNT" | b"BITPOS" | b"HGET" | b"HMGET"
        | b"HGETALL" | b"HKEYS" | b"HVALS" | b"HLEN" | b"HEXISTS" | b"HSTRLEN" | b"HRANDFIELD"
        | b"HSCAN" | b"LRANGE" | b"LLEN" | b"LINDEX" | b"LPOS" | b"SMEMBERS" | b"SISMEMBER"
        | b"SMISMEMBER" | b"SCARD" | b"SRANDMEMBER" | b"SSCAN" | b"ZRANGE" | b"ZRANGEBYSCORE"
        | b"ZRANGEBYLEX" | b"ZREVRANGE" | b"ZREVRANGEBYSCORE" | b"ZREVRANGEBYLEX" | b"ZSCORE"
        | b"ZMSCORE" | b"ZCARD" | b"ZRANK" | b"ZREVRANK" | b"ZCOUNT" | b"ZLEXCOUNT" | b"ZSCAN"
        | b"XRANGE" | b"XREVRANGE" | b"XLEN" | b"GEOPOS" | b"GEODIST" | b"GEOHASH" => {
            plain(R, Keys::First)
        }
        b"MGET" | b"EXISTS" | b"SINTER" | b"SUNION" | b"SDIFF" | b"PFCOUNT" | b"TOUCH" => {
            plain(R, Keys::All)
        }
        b"SET" | b"SETNX" | b"SETEX" | b"PSETEX" | b"GETSET" | b"GETDEL" | b"GETEX" | b"APPEND"
        | b"SETRANGE" | b"INCR" | b"INCRBY" | b"INCRBYFLOAT" | b"DECR" | b"DECRBY" | b"EXPIRE"
        | b"PEXPIRE" | b"EXPIREAT" | b"PEXPIREAT" | b"PERSIST" | b"SETBIT" | b"HSET"
        | b"HSETNX" | b"HMSET" | b"HINCRBY" | b"HINCRBYFLOAT" | b"HDEL" | b"LPUSH" | b"RPUSH"
        | b"LPUSHX" | b"RPUSHX" | b"LPOP" | b"RPOP" | b"LSET" | b"LREM" | b"LTRIM" | b"LINSERT"
        | b"SADD" | b"SREM" | b"SPOP" | b"ZADD" | b"ZINCRBY" | b"ZREM" | b"ZPOPMIN"
        | b"ZPOPMAX" | b"ZREMRANGEBYSCORE" | b"ZREMRANGEBYRANK" | b"ZREMRANGEBYLEX" | b"PFADD"
        | b"XADD" | b"XDEL" | b"XTRIM" | b"GEOADD" | b"RESTORE" => plain(W, Keys::First),
        b"DEL" | b"UNLINK" | b"SINTERSTORE" | b"SUNIONSTORE" | b"SDIFFSTORE" | b"PFMERGE" => {
            plain(W, Keys::All)
        }
        b"MSET" | b"MSETNX" => plain(W, Keys::Pairs),
        b"RENAME" | b"RENAMENX" | b"RPOPLPUSH" | b"LMOVE" | b"SMOVE" | b"COPY" | b"BLMOVE"
        | b"BRPOPLPUSH" => plain(W, Keys::FirstTwo),
        b"BLPOP" | b"BRPOP" | b"BZPOPMIN" | b"BZPOPMAX" => plain(W, Keys::AllButLast),
        b"KEYS" | b"SCAN" | b"DBSIZE" | b"RANDOMKEY" => plain(R, Keys::Everything),
        b"FLUSHDB" | b"FLUSHALL" | b"SWAPDB" => plain(W, Keys::Everything),
        // A script may read and write each key it declares; it runs
        // atomically, so it is one step on them.
        b"EVAL" | b"EVALSHA" | b"FCALL" => plain(W, Keys::Script),
        b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL_RO" => plain(R, Keys::Script),
        b"MULTI" => special(Special::Multi),
        b"EXEC" => special(Special::Exec),
        b"DISCARD" => special(Special::Discard),
        b"WATCH" => Spec {
            kind: R,
            keys: Keys::All,
            special: Special::Watch,
        },
        b"UNWATCH" => special(Special::Unwatch),
        b"PING" | b"ECHO" | b"SELECT" | b"AUTH" | b"HELLO" | b"CLIENT" | b"INFO" | b"QUIT"
        | b"RESET" | b"TIME" | b"COMMAND" | b"READONLY" | b"READWRITE" | b"LASTSAVE" => {
            special(Special::NoConflict)
        }
        _ => special(Special::Unknown),
    }
}

/// Argument index of a script's key count.
pub(super) const SCRIPT_NUMKEYS: usize = 2;

impl Keys {
    /// Whether argument `i` (0 is the command name) is a key; `script_keys`
    /// is the key count of a script command, once read.
    pub(super) fn is_key(self, i: usize, script_keys: u64) -> bool {
        match self {
            Keys::None | Keys::Everything => false,
            Keys::First => i == 1,
            Keys::FirstTwo => i == 1 || i == 2,
            Keys::All | Keys::AllButLast => i >= 1,
            Keys::Pairs => i % 2 == 1,
            Keys::Script => i > SCRIPT_NUMKEYS && ((i - SCRIPT_NUMKEYS) as u64) <= script_keys,
        }
    }

    /// Whether argument `i`'s bytes are kept (keys, and a script's key
    /// count, which is parsed from its display).
    pub(super) fn is_kept(self, i: usize, script_keys: u64) -> bool {
        self.is_key(i, script_keys) || (self == Keys::Script && i == SCRIPT_NUMKEYS)
    }
}
