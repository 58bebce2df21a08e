/** OpenFlow 1.3 wire version. */
export const OFP_VERSION = 0x04;
export const OFP_HEADER_LEN = 8;
export const OFP_MAX_MESSAGE_LEN = 0xffff;

export enum OFPT {
  HELLO = 0,
  ERROR = 1,
  ECHO_REQUEST = 2,
  ECHO_REPLY = 3,
  EXPERIMENTER = 4,
  FEATURES_REQUEST = 5,
  FEATURES_REPLY = 6,
  GET_CONFIG_REQUEST = 7,
  GET_CONFIG_REPLY = 8,
  SET_CONFIG = 9,
  PACKET_IN = 10,
  FLOW_REMOVED = 11,
  PORT_STATUS = 12,
  PACKET_OUT = 13,
  FLOW_MOD = 14,
  GROUP_MOD = 15,
  PORT_MOD = 16,
  TABLE_MOD = 17,
  MULTIPART_REQUEST = 18,
  MULTIPART_REPLY = 19,
  BARRIER_REQUEST = 20,
  BARRIER_REPLY = 21,
  QUEUE_GET_CONFIG_REQUEST = 22,
  QUEUE_GET_CONFIG_REPLY = 23,
  ROLE_REQUEST = 24,
  ROLE_REPLY = 25,
  GET_ASYNC_REQUEST = 26,
  GET_ASYNC_REPLY = 27,
  SET_ASYNC = 28,
  METER_MOD = 29,
}

export enum OFPMP {
  DESC = 0,
  FLOW = 1,
  AGGREGATE = 2,
  TABLE = 3,
  PORT_STATS = 4,
  QUEUE = 5,
  GROUP = 6,
  GROUP_DESC = 7,
  GROUP_FEATURES = 8,
  METER = 9,
  METER_CONFIG = 10,
  METER_FEATURES = 11,
  TABLE_FEATURES = 12,
  PORT_DESC = 13,
  EXPERIMENTER = 0xffff,
}

/** multipart flags */
export const OFPMPF_REQ_MORE = 1;
export const OFPMPF_REPLY_MORE = 1;

/** reserved port numbers */
export enum OFPP {
  MAX = 0xffffff00,
  IN_PORT = 0xfffffff8,
  TABLE = 0xfffffff9,
  NORMAL = 0xfffffffa,
  FLOOD = 0xfffffffb,
  ALL = 0xfffffffc,
  CONTROLLER = 0xfffffffd,
  LOCAL = 0xfffffffe,
  ANY = 0xffffffff,
}

export const OFP_NO_BUFFER = 0xffffffff;
export const OFPCML_NO_BUFFER = 0xffff;
export const OFPTT_MAX = 0xfe;
export const OFPTT_ALL = 0xff;
export const OFPG_ANY = 0xffffffff;
export const OFPG_ALL = 0xfffffffc;
export const OFPM_ALL = 0xffffffff;
export const OFPQ_ALL = 0xffffffff;

export enum OFPFC {
  ADD = 0,
  MODIFY = 1,
  MODIFY_STRICT = 2,
  DELETE = 3,
  DELETE_STRICT = 4,
}

/** flow_mod flags */
export const OFPFF_SEND_FLOW_REM = 1 << 0;
export const OFPFF_CHECK_OVERLAP = 1 << 1;
export const OFPFF_RESET_COUNTS = 1 << 2;
export const OFPFF_NO_PKT_COUNTS = 1 << 3;
export const OFPFF_NO_BYT_COUNTS = 1 << 4;

/** error types (ofp_error_type) */
export enum OFPET {
  HELLO_FAILED = 0,
  BAD_REQUEST = 1,
  BAD_ACTION = 2,
  BAD_INSTRUCTION = 3,
  BAD_MATCH = 4,
  FLOW_MOD_FAILED = 5,
  GROUP_MOD_FAILED = 6,
  PORT_MOD_FAILED = 7,
  TABLE_MOD_FAILED = 8,
  QUEUE_OP_FAILED = 9,
  SWITCH_CONFIG_FAILED = 10,
  ROLE_REQUEST_FAILED = 11,
  METER_MOD_FAILED = 12,
  TABLE_FEATURES_FAILED = 13,
  EXPERIMENTER = 0xffff,
}

export enum OFPHFC {
  INCOMPATIBLE = 0,
  EPERM = 1,
}

export enum OFPBRC {
  BAD_VERSION = 0,
  BAD_TYPE = 1,
  BAD_MULTIPART = 2,
  BAD_EXPERIMENTER = 3,
  BAD_EXP_TYPE = 4,
  EPERM = 5,
  BAD_LEN = 6,
  BUFFER_EMPTY = 7,
  BUFFER_UNKNOWN = 8,
  BAD_TABLE_ID = 9,
  IS_SLAVE = 10,
  BAD_PORT = 11,
  BAD_PACKET = 12,
  MULTIPART_BUFFER_OVERFLOW = 13,
}

export enum OFPBAC {
  BAD_TYPE = 0,
  BAD_LEN = 1,
  BAD_EXPERIMENTER = 2,
  BAD_EXP_TYPE = 3,
  BAD_OUT_PORT = 4,
  BAD_ARGUMENT = 5,
  EPERM = 6,
  TOO_MANY = 7,
  BAD_QUEUE = 8,
  BAD_OUT_GROUP = 9,
  MATCH_INCONSISTENT = 10,
  UNSUPPORTED_ORDER = 11,
  BAD_TAG = 12,
  BAD_SET_TYPE = 13,
  BAD_SET_LEN = 14,
  BAD_SET_ARGUMENT = 15,
}

export enum OFPBIC {
  UNKNOWN_INST = 0,
  UNSUP_INST = 1,
  BAD_TABLE_ID = 2,
  UNSUP_METADATA = 3,
  UNSUP_METADATA_MASK = 4,
  BAD_EXPERIMENTER = 5,
  BAD_EXP_TYPE = 6,
  BAD_LEN = 7,
  EPERM = 8,
}

export enum OFPBMC {
  BAD_TYPE = 0,
  BAD_LEN = 1,
  BAD_TAG = 2,
  BAD_DL_ADDR_MASK = 3,
  BAD_NW_ADDR_MASK = 4,
  BAD_WILDCARDS = 5,
  BAD_FIELD = 6,
  BAD_VALUE = 7,
  BAD_MASK = 8,
  BAD_PREREQ = 9,
  DUP_FIELD = 10,
  EPERM = 11,
}

/** Experimenter ids */
export const NX_VENDOR_ID = 0x00002320;
export const ONF_VENDOR_ID = 0x4f4e4600;
