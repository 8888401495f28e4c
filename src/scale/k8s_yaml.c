/*
 * k8s_yaml.c - a JSON value as one YAML document (libyaml's emitter), for the Kubernetes
 * manifests: keys in the order they were set, strings plain where YAML reads them back as the
 * same string and double-quoted where it would not ("8000", "true", "a: b"), multi-line
 * strings (the containers' scripts) as literal blocks.
 */
#include "scale/k8s_yaml.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "core/buf.h"

#define K8S_YAML_MAX (16 * 1024 * 1024) /* a ConfigMap holds at most 1 MiB; this is generous */

static int on_write(void *data, unsigned char *bytes, size_t size)
{
    return buf_append(data, bytes, size) == 0;
}

/* Would a plain scalar read back as this same string? Conservative: [A-Za-z0-9._/-] words
 * that do not start like a number and are none of YAML 1.1's booleans or nulls. */
static bool plain_ok(const char *s)
{
    static const char *const special[] = {"y",    "n",     "yes",  "no", "on",  "off",
                                          "true", "false", "null", "~",  "nan", "inf"};
    if (!*s || strchr("-.0123456789+", *s))
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._/-", *p))
            return false;
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
        if (strcasecmp(s, special[i]) == 0)
            return false;
    return true;
}

static int scalar(yaml_emitter_t *e, const char *text, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text, (int)strlen(text), 1, 1,
                                      style))
        return -1;
    return yaml_emitter_emit(e, &ev) ? 0 : -1;
}

static int emit_value(yaml_emitter_t *e, const json_t *v)
{
    yaml_event_t ev;
    char num[64];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
            !yaml_emitter_emit(e, &ev))
            return -1;
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            if (scalar(e, k,
                       plain_ok(k) ? YAML_PLAIN_SCALAR_STYLE : YAML_DOUBLE_QUOTED_SCALAR_STYLE) ||
                emit_value(e, x))
                return -1;
        }
        yaml_mapping_end_event_initialize(&ev);
        return yaml_emitter_emit(e, &ev) ? 0 : -1;
    }
    case JSON_ARRAY: {
        if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE) ||
            !yaml_emitter_emit(e, &ev))
            return -1;
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            if (emit_value(e, x))
                return -1;
        }
        yaml_sequence_end_event_initialize(&ev);
        return yaml_emitter_emit(e, &ev) ? 0 : -1;
    }
    case JSON_STRING: {
        const char *s = json_string_value(v);
        yaml_scalar_style_t st = strchr(s, '\n') ? YAML_LITERAL_SCALAR_STYLE
                                 : plain_ok(s)   ? YAML_PLAIN_SCALAR_STYLE
                                                 : YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        return scalar(e, s, st);
    }
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
        return scalar(e, num, YAML_PLAIN_SCALAR_STYLE);
    case JSON_REAL:
        snprintf(num, sizeof(num), "%.17g", json_real_value(v));
        return scalar(e, num, YAML_PLAIN_SCALAR_STYLE);
    case JSON_TRUE:
        return scalar(e, "true", YAML_PLAIN_SCALAR_STYLE);
    case JSON_FALSE:
        return scalar(e, "false", YAML_PLAIN_SCALAR_STYLE);
    default:
        return scalar(e, "null", YAML_PLAIN_SCALAR_STYLE);
    }
}

char *k8s_yaml_text(const json_t *doc)
{
    yaml_emitter_t e;
    yaml_event_t ev;
    struct buf b;
    buf_init(&b, K8S_YAML_MAX);
    if (!yaml_emitter_initialize(&e))
        return NULL;
    yaml_emitter_set_output(&e, on_write, &b);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_width(&e, 100);
    int rc = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) &&
                     yaml_emitter_emit(&e, &ev) &&
                     yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) &&
                     yaml_emitter_emit(&e, &ev)
                 ? 0
                 : -1;
    if (!rc)
        rc = emit_value(&e, doc);
    if (!rc)
        rc = yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&e, &ev) &&
                     yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&e, &ev) &&
                     yaml_emitter_flush(&e)
                 ? 0
                 : -1;
    yaml_emitter_delete(&e);
    size_t len;
    char *text = rc ? NULL : buf_take(&b, &len);
    buf_release(&b);
    return text;
}
