/* k8s_yaml.h - a JSON value written as one YAML document (the Kubernetes manifests). */
#ifndef TB_SCALE_K8S_YAML_H
#define TB_SCALE_K8S_YAML_H

#include <jansson.h>

/* The YAML text of doc (a new string the caller frees), or NULL when it cannot be written. */
char *k8s_yaml_text(const json_t *doc);

#endif
