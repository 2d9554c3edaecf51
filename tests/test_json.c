/* JSON reader: every branch, through the public parser. Each case is a whole
   header with the data length it needs and the exact expected class. */
#include "harness.h"
#include <stdlib.h>

#define T1 "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]"
#define ID MLOAD_ERR_INVALID_HEADER_DESERIALIZATION

static const hcase json_cases[] = {
    /* root and surrounding whitespace */
    {"", 0, ID},
    {"   ", 0, ID},
    {"\t\n\r ", 0, ID},
    {"[]", 0, ID},
    {"null", 0, ID},
    {"\"a\"", 0, ID},
    {"1", 0, ID},
    {"{", 0, ID},
    {"}", 0, ID},
    {"{}", 0, MLOAD_OK},
    {"{} ", 0, MLOAD_OK},
    {" \t\r\n{ \t\r\n} \t\r\n", 0, MLOAD_OK},
    {"{} x", 0, ID},
    {"{}\f", 0, ID},
    {"{} {}", 0, ID},
    {"{}}", 0, ID},
    {"\xEF\xBB\xBF{}", 0, ID},          /* BOM */
    {"{}\xC2\xA0", 0, ID},              /* NBSP */
    {"\f{}", 0, ID},
    {"{/*c*/}", 0, ID},
    {"{}//", 0, ID},
    {"{'a':1}", 0, ID},
    /* members */
    {"{\"a\":{" T1 "}}", 4, MLOAD_OK},
    {"{\"a\":{" T1 "},}", 4, ID},       /* trailing comma */
    {"{,\"a\":{" T1 "}}", 4, ID},
    {"{\"a\" {" T1 "}}", 4, ID},        /* missing colon */
    {"{\"a\"::{" T1 "}}", 4, ID},
    {"{\"a\":{" T1 "} \"b\":{" T1 "}}", 4, ID},  /* missing comma */
    {"{\"a\":{" T1 "}", 4, ID},         /* unterminated object */
    {"{a:{" T1 "}}", 4, ID},            /* unquoted key */
    {"{\"a\":{" T1 ",}}", 4, ID},       /* trailing comma in entry */
    {"{\"a\":{" T1 " \"x\":1}}", 4, ID},
    {"{\"a\":{\"dtype\" \"F32\"}}", 0, ID},
    /* strings */
    {"{\"a\x01\":{" T1 "}}", 4, ID},    /* raw control character */
    {"{\"a\tb\":{" T1 "}}", 4, ID},     /* raw tab */
    {"{\"a\nb\":{" T1 "}}", 4, ID},
    {"{\"a\\x\":{" T1 "}}", 4, ID},     /* unknown escape */
    {"{\"a\\'\":{" T1 "}}", 4, ID},
    {"{\"a\\u12\":{" T1 "}}", 4, ID},   /* short \u */
    {"{\"a\\u00zz\":{" T1 "}}", 4, ID},
    {"{\"\\ud800\":{" T1 "}}", 4, ID},  /* lone high surrogate */
    {"{\"\\udc00\":{" T1 "}}", 4, ID},  /* lone low surrogate */
    {"{\"\\ud800\\u0041\":{" T1 "}}", 4, ID},
    {"{\"\\ud800\\ud800\":{" T1 "}}", 4, ID},
    {"{\"\\ud800x\":{" T1 "}}", 4, ID},
    {"{\"\\ud83d\\ude00\":{" T1 "}}", 4, MLOAD_OK},
    /* a string that fails after escapes were decoded in place must leave
       valid UTF-8 behind: the class stays a JSON error, as the reference's */
    {"{\"\\n\xC3\xA9\\q\":{" T1 "}}", 4, ID},
    {"{\"\xC3\xA9\\q\xC3\xA9\":{" T1 "}}", 4, ID},
    {"{\"\\t\xE2\x82\xAC\xF0\x9F\x98\x80\\u00\":{" T1 "}}", 4, ID},
    {"{\"\\n\xC3\xA9\\ud800\":{" T1 "}}", 4, ID},
    {"{\"\\q\xFF\":{" T1 "}}", 4, MLOAD_ERR_INVALID_HEADER}, /* bad UTF-8 anywhere wins */
    {"{\"\\u0000\":{" T1 "}}", 4, MLOAD_OK},
    {"{\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\":{" T1 "}}", 4, MLOAD_OK},
    {"{\"abc", 0, ID},                  /* unterminated string at the end */
    {"{\"abc\\", 0, ID},
    {"{\"abc\\u", 0, ID},
    /* field names are compared after decoding */
    {"{\"a\":{\"\\u0064type\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, MLOAD_OK},
    {"{\"a\":{\"dtype\":\"F\\u00332\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, MLOAD_OK},
    /* integers */
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1e0],\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1E0],\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-0],\"data_offsets\":[0,0]}}", 0, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[00],\"data_offsets\":[0,0]}}", 0, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[+1],\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[null],\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[18446744073709551616],\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"U8\",\"shape\":[18446744073709551615],\"data_offsets\":[0,4]}}", 4, MLOAD_ERR_VALIDATION_OVERFLOW},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,],\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[,1],\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1 1],\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":null,\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[[1]],\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[ 1 , 1 ],\"data_offsets\":[ 0 , 4 ]}}", 4, MLOAD_OK},
    /* data_offsets: exactly two integers */
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,-4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":\"0,4\"}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{\"0\":4}}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,18446744073709551616]}}", 4, ID},
    /* dtype names: exact */
    {"{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F3\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32 \",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F8_E4M3FN\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, ID},
    {"{\"a\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}}", 16, ID},
    {"{\"a\":{\"dtype\":\"C128\",\"shape\":[1],\"data_offsets\":[0,16]}}", 16, ID},
    {"{\"a\":{\"dtype\":\"I4\",\"shape\":[2],\"data_offsets\":[0,1]}}", 1, ID},
    {"{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":null,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, ID},
    /* missing / duplicate fields */
    {"{\"a\":{}}", 0, ID},
    {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"shape\":[1],\"data_offsets\":[0,4]}}", 4, ID},
    {"{\"a\":{" T1 ",\"data_offsets\":[0,4]}}", 4, ID},
    /* entry type */
    {"{\"a\":[1]}", 0, ID},
    {"{\"a\":null}", 0, ID},
    {"{\"a\":\"x\"}", 0, ID},
    {"{\"a\":1}", 0, ID},
    /* unknown fields: any valid JSON is ignored */
    {"{\"a\":{" T1 ",\"x\":{\"a\":[1,2,{\"b\":null}],\"c\":-1.5e10,\"d\":true,\"e\":false,\"f\":\"s\\n\",\"g\":[],\"h\":{}}}}", 4, MLOAD_OK},
    {"{\"a\":{\"x\":0,\"dtype\":\"F32\",\"y\":-0.0,\"shape\":[1],\"z\":1E+2,\"data_offsets\":[0,4]}}", 4, MLOAD_OK},
    {"{\"a\":{" T1 ",\"x\":1e308}}", 4, MLOAD_OK},
    {"{\"a\":{" T1 ",\"x\":-1e308}}", 4, MLOAD_OK},
    {"{\"a\":{" T1 ",\"x\":1.7976931348623157e308}}", 4, MLOAD_OK},
    {"{\"a\":{" T1 ",\"x\":1.8e308}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":1e309}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":1e400}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":-1e400}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":1e-400}}", 4, MLOAD_OK},
    {"{\"a\":{" T1 ",\"x\":0e999}}", 4, MLOAD_OK},
    {"{\"a\":{" T1 ",\"x\":0.0001e312}}", 4, MLOAD_OK},
    {"{\"a\":{" T1 ",\"x\":123456789012345678901234567890}}", 4, MLOAD_OK},
    /* serde_json's verdicts near the double range (checked against the reference) */
    {"{\"a\":{" T1 ",\"x\":1.797693134862315699e308}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":1.79769313486231590e308}}", 4, MLOAD_OK},
    {"{\"a\":{" T1 ",\"x\":1e2147483648}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":0e2147483648}}", 4, MLOAD_OK},
    {"{\"a\":{" T1 ",\"x\":123.456e-2147483649}}", 4, MLOAD_OK},
    {"{\"a\":{" T1 ",\"x\":-18446744073709551616e292}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":-9223372036854775809}}", 4, MLOAD_OK},
    {"{\"a\":{" T1 ",\"x\":1.}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":.5}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":-}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":1e}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":1e+}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":01}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":+1}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":NaN}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":Infinity}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":tru}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":nul}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":fals}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":True}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":[1,]}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":[1 2]}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":[}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":{\"a\" 1}}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":{1:2}}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":{\"a\":1,}}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":{\"a\":1]}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":[1}}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":\"\\ud800\"}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":\"a\x02\"}}", 4, ID},
    {"{\"a\":{" T1 ",\"x\":}}", 4, ID},
    /* __metadata__ */
    {"{\"__metadata__\":null}", 0, MLOAD_OK},
    {"{\"__metadata__\":{}}", 0, MLOAD_OK},
    {"{\"__metadata__\":{\"k\":\"v\",\"k2\":\"\"}}", 0, MLOAD_OK},
    {"{\"__metadata__\":\"x\"}", 0, ID},
    {"{\"__metadata__\":[]}", 0, ID},
    {"{\"__metadata__\":1}", 0, ID},
    {"{\"__metadata__\":{\"k\":1}}", 0, ID},
    {"{\"__metadata__\":{\"k\":null}}", 0, ID},
    {"{\"__metadata__\":{\"k\":[\"a\"]}}", 0, ID},
    {"{\"__metadata__\":{\"k\":{\"a\":\"b\"}}}", 0, ID},
    {"{\"__metadata__\":{\"k\":\"v\",}}", 0, ID},
    {"{\"__metadata__\":{\"k\" \"v\"}}", 0, ID},
    {"{\"__metadata__\":{k:\"v\"}}", 0, ID},
    {"{\"__metadata__\":{\"k\":\"v\"}", 0, ID},
    {"{\"__metadata__\":{\"k\":\"v\"},\"__metadata__\":null}", 0, MLOAD_ERR_DUPLICATE_KEY},
    {"{\"__metadata__\":null,\"__metadata__\":null}", 0, MLOAD_ERR_DUPLICATE_KEY},
    {"{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"}}", 0, MLOAD_ERR_DUPLICATE_KEY},
    {"{\"__metadata__\":{\"k\":\"v\",\"\\u006b\":\"w\"}}", 0, MLOAD_ERR_DUPLICATE_KEY},
    {"{\"\\u005f_metadata__\":{\"k\":\"v\"}}", 0, MLOAD_OK},
    /* duplicate tensor names (the reference keeps the last; we refuse) */
    {"{\"a\":{" T1 "},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, MLOAD_ERR_DUPLICATE_KEY},
    {"{\"a\":{" T1 "},\"\\u0061\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, MLOAD_ERR_DUPLICATE_KEY},
};

static void test_json_table(void) { CHECK_HDR_CASES("json", json_cases); }

/* NUL bytes after the root object are not whitespace */
/* 1 followed by 400 zeros, e-0 / e-50: the reference refuses (out of range) */
static void test_json_long_numbers(void) {
    char h[1024];
    size_t n;
    mload_error e;
    n = (size_t)sprintf(h, "{\"a\":{" T1 ",\"x\":1");
    memset(h + n, '0', 400);
    strcpy(h + n + 400, "e-0}}");
    CHECK_RES(parse_hdr(h, 4, &e), ID);
    strcpy(h + n + 400, "e-92}}");
    CHECK_RES(parse_hdr(h, 4, &e), MLOAD_OK);
    strcpy(h + n + 400, "}}"); /* an integer too long for 64 bits is a double: 1e400 */
    CHECK_RES(parse_hdr(h, 4, &e), ID);
}

static void test_json_nul_padding(void) {
    static const char h[] = "{}\0\0\0\0\0\0";
    tbuf b = make_st_n(h, 8, 0, NULL);
    mload_file *f;
    mload_error e;
    CHECK_RES(open_mem(&b, &f, &e), ID);
    CHECK(f == NULL);
    CHECK_EQ_U64(e.offset, 10); /* the first NUL: 8 + 2 */
    tbuf_free(&b);
    /* a NUL inside a string is a raw control character */
    b = make_st_n("{\"a\0\":{}}", 9, 0, NULL);
    CHECK_RES(open_mem(&b, &f, &e), ID);
    tbuf_free(&b);
}

static void test_json_decoded_names(void) {
    const char *h =
        "{\"q\\\"\\\\\\/\\b\\f\\n\\r\\t\":{" T1 "},"
        "\"x\\u0000y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
        "\"\\ud83d\\ude00\\u00e9\\u20ac\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
        "\"raw\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}";
    tbuf b = make_st(h, 16, NULL);
    mload_file *f;
    mload_error e;
    const mload_tensor *t;
    CHECK_RES(open_mem(&b, &f, &e), MLOAD_OK);
    if (!f) { tbuf_free(&b); return; }
    CHECK_EQ_U64(mload_file_count(f), 4);
    t = mload_file_tensor(f, 0);
    CHECK_EQ_U64(t->name_len, 9);
    CHECK(memcmp(t->name, "q\"\\/\b\f\n\r\t", 10) == 0); /* includes the terminating NUL */
    t = mload_file_tensor(f, 1);
    CHECK_EQ_U64(t->name_len, 3);
    CHECK(memcmp(t->name, "x\0y", 4) == 0);
    CHECK(mload_file_find_n(f, "x\0y", 3) == t);
    CHECK(mload_file_find(f, "x") == NULL); /* C-string lookup stops at the NUL */
    t = mload_file_tensor(f, 2);
    CHECK_EQ_U64(t->name_len, 4 + 2 + 3);
    CHECK(memcmp(t->name, "\xf0\x9f\x98\x80\xc3\xa9\xe2\x82\xac", 10) == 0);
    CHECK(mload_file_find(f, "\xf0\x9f\x98\x80\xc3\xa9\xe2\x82\xac") == t);
    t = mload_file_tensor(f, 3);
    CHECK(strcmp(t->name, "raw\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80") == 0);
    mload_file_close(f);
    tbuf_free(&b);
}

/* nesting depth: root = 1, tensor entry = 2, so an unknown field value may
   open 125 more levels (127 in all, serde_json's limit); 126 fails. */
static void test_json_depth(void) {
    int levels[] = {1, 100, 125, 126, 127, 200, 100000};
    size_t k;
    for (k = 0; k < sizeof(levels) / sizeof(levels[0]); ++k) {
        tbuf h = {0, 0, 0};
        int i, n = levels[k];
        mload_error e;
        mload_result r;
        tbuf_put(&h, "{\"a\":{" T1 ",\"x\":", strlen("{\"a\":{" T1 ",\"x\":"));
        for (i = 0; i < n; ++i) tbuf_put(&h, (i & 1) ? "{\"k\":" : "[", (i & 1) ? 5 : 1);
        tbuf_put(&h, "1", 1);
        for (i = n - 1; i >= 0; --i) tbuf_put(&h, (i & 1) ? "}" : "]", 1);
        tbuf_put(&h, "}}", 3); /* with the NUL */
        r = parse_hdr((const char *)h.p, 4, &e);
        if (n <= 125) CHECK_RES(r, MLOAD_OK);
        else CHECK_RES(r, ID);
        tbuf_free(&h);
    }
}

static void test_json_error_offset(void) {
    /* the error offset points into the header at the offending byte */
    mload_error e;
    const char *h = "{\"a\":{" T1 ",\"x\":tru}}";
    CHECK_RES(parse_hdr(h, 4, &e), ID);
    CHECK_EQ_U64(e.offset, 8 + (uint64_t)(strstr(h, "tru") - h));
    CHECK(strstr(e.message, "literal") != NULL);
    CHECK_RES(parse_hdr("{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, &e), ID);
    CHECK_EQ_U64(e.offset, 8 + 14);
    CHECK(strstr(e.message, "dtype") != NULL);
}

static void test_json_duplicate_names_reported(void) {
    mload_error e;
    CHECK_RES(parse_hdr("{\"w.a\":{" T1 "},\"w.a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, &e),
              MLOAD_ERR_DUPLICATE_KEY);
    CHECK(strcmp(e.tensor, "w.a") == 0);
    CHECK(strstr(e.message, "w.a") != NULL);
    CHECK_RES(parse_hdr("{\"__metadata__\":{\"fmt\":\"pt\",\"fmt\":\"np\"}}", 0, &e), MLOAD_ERR_DUPLICATE_KEY);
    CHECK(strcmp(e.tensor, "fmt") == 0);
    CHECK_RES(parse_hdr("{\"__metadata__\":null,\"__metadata__\":{}}", 0, &e), MLOAD_ERR_DUPLICATE_KEY);
    CHECK(strcmp(e.tensor, "__metadata__") == 0);
}

static void test_json_many_metadata(void) {
    /* many keys: the duplicate check is a hash, not quadratic */
    tbuf h = {0, 0, 0};
    int i;
    char kv[64];
    mload_file *f;
    mload_error e;
    tbuf b;
    tbuf_put(&h, "{\"__metadata__\":{", 17);
    for (i = 0; i < 50000; ++i) {
        int n = snprintf(kv, sizeof kv, "%s\"key%d\":\"value%d\"", i ? "," : "", i, i * 7);
        tbuf_put(&h, kv, (size_t)n);
    }
    tbuf_put(&h, "}}", 2);
    b = make_st_n((const char *)h.p, h.n, 0, NULL);
    CHECK_RES(open_mem(&b, &f, &e), MLOAD_OK);
    if (f) {
        const mload_kv *kvp;
        CHECK_EQ_U64(mload_file_metadata_count(f), 50000);
        CHECK(mload_file_has_metadata(f));
        kvp = mload_file_metadata_find(f, "key4321");
        CHECK(kvp && strcmp(kvp->value, "value30247") == 0 && kvp->value_len == 10);
        kvp = mload_file_metadata(f, 2);
        CHECK(kvp && strcmp(kvp->key, "key2") == 0);
        CHECK(mload_file_metadata_find(f, "key") == NULL);
        CHECK(mload_file_metadata(f, 50000) == NULL);
        mload_file_close(f);
    }
    tbuf_free(&b);
    tbuf_free(&h);
}

void area_json(void) {
    RUN(test_json_table);
    RUN(test_json_long_numbers);
    RUN(test_json_nul_padding);
    RUN(test_json_decoded_names);
    RUN(test_json_depth);
    RUN(test_json_error_offset);
    RUN(test_json_duplicate_names_reported);
    RUN(test_json_many_metadata);
}
