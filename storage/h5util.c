/* h5util.c — the HDF5 toolkit of storage/ (h5util.h). */
#include "h5util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ifk_h5_init(void) {
    static int done = 0;
    if (!done) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        done = 1;
    }
}

static herr_t innermost_(unsigned n, const H5E_error2_t *e, void *data) {
    if (n == 0 && e->desc) snprintf(data, 200, "%s", e->desc); /* walking upward, 0 is the innermost */
    return 0;
}

ifk_status ifk_h5_fail_at(const char *file, int line, const char *fmt, ...) {
    char what[1024], detail[200] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_, detail);
    H5Eclear2(H5E_DEFAULT);
    detail[strcspn(detail, "\r\n")] = '\0';
    if (!detail[0]) return ifk_fail_at(IFK_ERR_H5, file, line, "%s", what);
    if (strstr(detail, "unable to lock file")) /* a file system without working locks (NFS without lockd, ...) */
        return ifk_fail_at(IFK_ERR_H5, file, line, "%s (HDF5: %s): the file system does not support file locks; set "
                           "HDF5_USE_FILE_LOCKING=FALSE to read without them (safe while no cache job writes the store)",
                           what, detail);
    return ifk_fail_at(IFK_ERR_H5, file, line, "%s (HDF5: %s)", what, detail);
}

static int broken_ = 0;

void ifk_h5_set_broken(void) { broken_ = 1; }

int ifk_store_hdf5_broken(void) { return broken_; }

void ifk_h5_close(hid_t *id) {
    if (*id < 0) return;
    switch (H5Iget_type(*id)) {
    case H5I_FILE:
        if (H5Fclose(*id) < 0 && H5Iis_valid(*id) > 0) ifk_h5_set_broken(); /* half-closed */
        break;
    case H5I_GROUP: H5Gclose(*id); break;
    case H5I_DATASET: H5Dclose(*id); break;
    case H5I_DATASPACE: H5Sclose(*id); break;
    case H5I_DATATYPE: H5Tclose(*id); break;
    case H5I_ATTR: H5Aclose(*id); break;
    case H5I_GENPROP_LST: H5Pclose(*id); break;
    default: break;
    }
    *id = H5I_INVALID_HID;
}

hid_t ifk_h5_dtype(ifk_dtype d) {
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    if (t < 0 || d == IFK_DT_F32) return t;
    int ok = d == IFK_DT_F16
                 ? H5Tset_fields(t, 15, 10, 5, 0, 10) >= 0 && H5Tset_precision(t, 16) >= 0 && H5Tset_ebias(t, 15) >= 0
                 : H5Tset_fields(t, 15, 7, 8, 0, 7) >= 0 && H5Tset_precision(t, 16) >= 0 && H5Tset_ebias(t, 127) >= 0;
    if (!ok || H5Tset_size(t, 2) < 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

hid_t ifk_h5_vlen_str(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return t;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

herr_t ifk_h5_attr_write(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *val) {
    hid_t sp = H5Screate(H5S_SCALAR), a = H5I_INVALID_HID;
    herr_t r = -1;
    if (sp >= 0 && (a = H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0) r = H5Awrite(a, mtype, val);
    if (a >= 0 && H5Aclose(a) < 0) r = -1;
    ifk_h5_close(&sp);
    return r;
}

herr_t ifk_h5_attr_int(hid_t obj, const char *name, long long v) {
    return ifk_h5_attr_write(obj, name, H5T_STD_I64LE, H5T_NATIVE_LLONG, &v);
}

herr_t ifk_h5_attr_dbl(hid_t obj, const char *name, double v) {
    return ifk_h5_attr_write(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

herr_t ifk_h5_attr_str(hid_t obj, const char *name, const char *v) {
    hid_t t = ifk_h5_vlen_str();
    herr_t r = t >= 0 ? ifk_h5_attr_write(obj, name, t, t, &v) : -1;
    ifk_h5_close(&t);
    return r;
}

int ifk_h5_attr_read_int(hid_t obj, const char *name, long long *v) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return 0;
    hid_t t = H5Aget_type(a);
    int ok = t >= 0 && H5Tget_class(t) == H5T_INTEGER && H5Aread(a, H5T_NATIVE_LLONG, v) >= 0;
    ifk_h5_close(&t);
    H5Aclose(a);
    return ok;
}

int ifk_h5_attr_read_str(hid_t obj, const char *name, char *buf, size_t cap) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return 0;
    hid_t t = H5Aget_type(a), mt = H5I_INVALID_HID;
    int ok = 0;
    if (t >= 0 && H5Tget_class(t) == H5T_STRING) {
        if (H5Tis_variable_str(t) > 0) {
            char *s = NULL;
            mt = H5Tcopy(H5T_C_S1);
            if (mt >= 0 && H5Tset_size(mt, H5T_VARIABLE) >= 0 && H5Tset_cset(mt, H5Tget_cset(t)) >= 0 &&
                H5Aread(a, mt, &s) >= 0 && s) {
                snprintf(buf, cap, "%s", s);
                H5free_memory(s);
                ok = 1;
            }
        } else {
            size_t n = H5Tget_size(t);
            char *s = calloc(n + 1, 1);
            mt = H5Tcopy(H5T_C_S1);
            if (s && mt >= 0 && H5Tset_size(mt, n) >= 0 && H5Aread(a, mt, s) >= 0) {
                snprintf(buf, cap, "%s", s);
                ok = 1;
            }
            free(s);
        }
    }
    ifk_h5_close(&mt);
    ifk_h5_close(&t);
    H5Aclose(a);
    return ok;
}

int ifk_h5_shape_ok(hid_t ds, int rank, const hsize_t *want, H5T_class_t cls, size_t size) {
    hid_t sp = H5Dget_space(ds), t = H5Dget_type(ds);
    hsize_t d[8];
    int ok = sp >= 0 && t >= 0 && rank <= 8 && H5Sget_simple_extent_ndims(sp) == rank &&
             H5Sget_simple_extent_dims(sp, d, NULL) == rank && H5Tget_class(t) == cls && H5Tget_size(t) == size;
    for (int i = 0; ok && i < rank; i++) ok = d[i] == want[i];
    ifk_h5_close(&sp);
    ifk_h5_close(&t);
    return ok;
}
