/* placeholder so the module library exists before its code lands */
typedef int lb_http_placeholder;
